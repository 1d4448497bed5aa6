"""The benchmarks of issue 11: every workload beside its baseline, in interleaved rounds.

Run ``uv run --group bench python -m benchmarks`` (``--help`` for the options); the results
are printed and written to ``docs/performance.md``, which also says what each workload
measures. Modules: :mod:`benchmarks.harness` (rounds, table, machine, page),
:mod:`benchmarks.workloads` (the workloads and their targets), :mod:`benchmarks.importing`,
:mod:`benchmarks.usages` and :mod:`benchmarks.es` (the eventsourcing baselines, imported only
when eventsourcing is installed). ``bench_stores.py`` is the older by-hand comparison of the
stores, with the cost of ``load()`` by ledger length.
"""
