"""``python -m benchmarks``: run the workloads, print the table, write docs/performance.md."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from .harness import Report, machine, say, write_page
from .workloads import (
    ES_MISSING,
    WORKLOADS,
    Config,
    eventsourcing_available,
    own_database,
    reachable,
    server_version,
)

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
FULL = "import=100000,1000000 usages=2000 simulate=2000x52 report=2000x52"
QUICK = "import=200 usages=20 simulate=10x1 report=20x4"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Every workload of issue 11 beside its baseline, in interleaved rounds: "
        "medians, spreads and ratios, printed and written to docs/performance.md.",
    )
    p.add_argument("--quick", action="store_true", help=f"tiny sizes ({QUICK}), 2 rounds")
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only the workloads whose name contains NAME (of {', '.join(WORKLOADS)}); "
        "may be repeated",
    )
    p.add_argument("--rounds", type=int, help="rounds of the usage workloads (default 5)")
    p.add_argument(
        "--long-rounds",
        type=int,
        help="rounds of the import, simulate and report workloads (default: --rounds, at most 3)",
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        metavar="KEY=VALUE",
        help="import=ROWS[,ROWS...] usages=PER_ROUND simulate=CLIENTSxWEEKS "
        f"report=CLIENTSxWEEKS (default {FULL})",
    )
    p.add_argument(
        "--import-timeout",
        type=float,
        default=600.0,
        help="stop an import round after this many seconds (SIGTERM; default 600)",
    )
    p.add_argument(
        "--pg-dsn",
        default=os.environ.get("SESSIONPACKS_PG_DSN"),
        help="PostgreSQL on 127.0.0.1 (default $SESSIONPACKS_PG_DSN); without one the "
        "PostgreSQL workloads are skipped",
    )
    p.add_argument("--no-write", action="store_true", help="do not touch docs/performance.md")
    p.add_argument("--page", type=Path, default=PAGE, help="the page to write the results to")
    p.add_argument(
        "--label",
        default="",
        help="a line printed above the table, e.g. 'shared machine: figures are indicative'",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    return p


def sizes(config: Config, given: list[str]) -> None:
    """Apply ``import=...``, ``usages=...``, ``simulate=CxW`` and ``report=CxW`` to ``config``."""
    for item in given:
        key, _, value = item.partition("=")
        if key == "import":
            config.import_sizes = [int(v) for v in value.split(",") if v]
        elif key == "usages":
            config.usages = int(value)
        elif key == "simulate" and re.fullmatch(r"\d+x\d+", value):
            clients, weeks = value.split("x")
            config.clients, config.weeks = int(clients), int(weeks)
        elif key == "report" and re.fullmatch(r"[1-9]\d*x[1-9]\d*", value):
            clients, weeks = value.split("x")
            config.report_clients, config.report_weeks = int(clients), int(weeks)
        else:
            raise SystemExit(
                f"--sizes: cannot read {item!r} (import=N,N usages=N simulate=CxW report=CxW)"
            )


def described(config: Config) -> str:
    return (
        f"import {', '.join(f'{n:,}' for n in config.import_sizes)} rows; "
        f"{config.usages:,} usages a round; simulate {config.clients} clients x "
        f"{config.weeks} weeks; report over simulate {config.report_clients} clients x "
        f"{config.report_weeks} weeks; {config.rounds} rounds ({config.long_rounds} for "
        "import, simulate and report)"
    )


def chosen(only: list[str] | None) -> list[str]:
    names = [n for n in WORKLOADS if not only or any(o in n for o in only)]
    if not names:
        raise SystemExit(f"--only {only}: no such workload (of {', '.join(WORKLOADS)})")
    return names


def main(argv: list[str] | None = None) -> Report:
    args = parser().parse_args(argv)
    names = chosen(args.only)
    with tempfile.TemporaryDirectory(prefix="sessionpacks-bench-") as work:
        rounds = args.rounds or (2 if args.quick else 5)
        config = Config(Path(work), rounds=rounds)
        config.long_rounds = args.long_rounds or min(rounds, 3)
        config.import_timeout = args.import_timeout
        sizes(config, (QUICK if args.quick else FULL).split() + (args.sizes or []))
        config.eventsourcing = eventsourcing_available()
        if not config.eventsourcing:
            config.note(ES_MISSING)
        dsn, why = reachable(args.pg_dsn)
        if dsn is None and any("postgres" in n or n == "simulate" for n in names):
            config.note(f"PostgreSQL workloads skipped: {why}")
        report = Report(machine(server_version(dsn)), described(config), label=args.label)
        say(f"sizes: {report.sizes}")
        for key, value in report.machine.items():
            say(f"  {key}: {value}")
        if dsn is None:
            for name in names:
                say(f"running {name}")
                report.rows += WORKLOADS[name](config, None)
        else:
            with own_database(dsn) as own:
                for name in names:
                    say(f"running {name}")
                    report.rows += WORKLOADS[name](config, own)
    report.notes = config.notes
    text = report.markdown()
    say("\n" + text)
    if args.json:
        report.write_json(args.json)
    if not args.no_write:
        write_page(args.page, text)
        say(f"written to {args.page}")
    return report


if __name__ == "__main__":
    main()
