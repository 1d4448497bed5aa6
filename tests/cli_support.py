"""Driving the ``sessionpacks`` command line from tests.

:func:`run_cli` is the one way the CLI tests call the command line: in-process, through
``sessionpacks.cli.main(argv, out=..., err=...)``, with the process around it set up as a
subprocess of the console script would find it (no ``SESSIONPACKS_*`` variables of the
user's, the working folder given) and put back afterwards. :class:`Cli` binds it to one
test's database. :data:`ENV` and :func:`console_script` are for the few tests that need a
real process: the console-script smoke tests, signals, standard input's bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import pytest

from sessionpacks.cli import main

__all__ = ["ENV", "NOW", "Cli", "Run", "console_script", "run_cli"]

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-03-02T08:00+11:00"


class Run(NamedTuple):
    """What one command did: its exit status and what it wrote to stdout and stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output as one JSON document."""
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        """Standard output as one JSON document a line."""
        return [json.loads(line) for line in self.out.splitlines()]


def run_cli(
    *argv: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    err: TextIO | None = None,
) -> Run:
    """Run ``sessionpacks *argv`` in-process and return its :class:`Run`.

    For the call only, as the console script run in a subprocess with that environment
    would see it: every ``SESSIONPACKS_*`` variable is removed, then ``env`` is set; the
    working folder is ``cwd`` (when given); ``sys.stdin`` reads ``stdin`` (when given).
    Standard output and standard error are ``io.StringIO`` (``err`` may be another stream,
    say one that claims to be a terminal; what it holds is then not in :attr:`Run.err`).
    An exception ``main`` lets out is a bug and fails the test, as a traceback on stderr
    would; stderr is checked for one too.
    """
    out, errors = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("SESSIONPACKS_")]:
            patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        if stdin is not None:
            patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv), out=out, err=err or errors)
    run = Run(code, out.getvalue(), errors.getvalue())
    assert "Traceback" not in run.err, run.err
    return run


class Cli:
    """``cli("pack", "show", "P1")`` runs the command line on this test's database,
    ``folder/clinic.db``, at ``--now`` ``now``, in ``folder``."""

    def __init__(self, folder: Path, *, now: str = NOW) -> None:
        self.folder = folder
        self.db = folder / "clinic.db"
        self.now = now

    def raw(
        self, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
    ) -> Run:
        """Exactly ``args``: no ``--db``, no ``--now``."""
        return run_cli(*args, cwd=self.folder, env=env, stdin=stdin)

    def __call__(
        self,
        *args: str,
        now: str | None = None,
        stdin: str | None = None,
        err: TextIO | None = None,
    ) -> Run:
        prefix = ("--db", str(self.db), "--now", now or self.now)
        return run_cli(*prefix, *args, cwd=self.folder, stdin=stdin, err=err)

    def ok(self, *args: str, now: str | None = None) -> Run:
        """The command, which must succeed."""
        run = self(*args, now=now)
        assert run.code == 0, run.err
        return run

    def json(self, *args: str) -> Any:
        """The command with ``--json``, which must succeed: its output read."""
        return self.ok(*args, "--json").json()


# Real processes -------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    """A child's environment: no store variables of the user's, and coverage measured in the
    child when this run measures it (the data files are combined by pytest-cov)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONPACKS_")}
    try:
        import coverage
    except ImportError:  # pragma: no cover - coverage is a dev dependency
        return env
    current = coverage.Coverage.current()
    if current is not None:
        env["COVERAGE_PROCESS_START"] = str(ROOT / "pyproject.toml")
        env["COVERAGE_FILE"] = os.path.abspath(current.config.data_file)
    return env


ENV = _environment()
"""The environment of a child process running the command line."""


def console_script() -> str:
    """The installed ``sessionpacks`` entry point, next to this interpreter."""
    found = shutil.which("sessionpacks", path=str(Path(sys.executable).parent))
    assert found is not None, f"no sessionpacks script next to {sys.executable}"
    return found


def until_rows_landed(db: Path, running: subprocess.Popen[bytes]) -> None:
    """Wait until an import into ``db`` has committed some usages and is still running: a batch
    is committed whole, so a wait on the clock alone can see none or every row landed."""
    deadline = time.monotonic() + 60
    while True:
        assert running.poll() is None, "the import finished before it was signalled"
        assert time.monotonic() < deadline
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as seen:
            (count,) = seen.execute("SELECT count(*) FROM active_usages").fetchone()
        if count:
            return
        time.sleep(0.005)
