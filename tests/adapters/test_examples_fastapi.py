"""The worked FastAPI host, examples/fastapi_clinic, passes its own tests, on SQLite and on
PostgreSQL.

It is run as a host would run it: pytest on the folder, in a process of its own, with the
folder's pytest.ini (not the library's options). Every test of the example that takes its
``clinic`` fixture must pass on each database: none may skip, so the PostgreSQL run (given the
server :func:`~tests.pg_support.pg_dsn` found, which fails under ``CI=true`` when there is none)
cannot pass by skipping.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..pg_support import pg_dsn

__all__ = ["pg_dsn"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_clinic"
TESTS = EXAMPLE / "clinic_tests" / "test_clinic_api.py"


def _run_example(tmp_path: Path, marks: str, dsn: str | None) -> str:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "SESSIONPACKS_PG_DSN"
    }
    if dsn is not None:
        environment["SESSIONPACKS_PG_DSN"] = dsn
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE), "-v", "--color=no", "-m", marks],
        cwd=tmp_path,  # a scratch directory: nothing the run leaves lands in the tree
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert not re.search(r" (FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", output), output
    return output


def _clinic_tests() -> set[str]:
    """The example's tests that run on a database (they take the ``clinic`` fixture)."""
    found = set(re.findall(r"^def (test_\w+)\(\s*clinic\b", TESTS.read_text(), re.MULTILINE))
    assert len(found) >= 8, found
    return found


def _passed(output: str, database: str) -> set[str]:
    return set(re.findall(rf"test_clinic_api\.py::(\w+)\[{database}\] PASSED", output))


def test_the_fastapi_example_passes_its_tests_on_sqlite(tmp_path: Path) -> None:
    output = _run_example(tmp_path, "not postgres", dsn=None)
    assert _passed(output, "sqlite") >= _clinic_tests(), output
    # The one error handler, every library error through it; the README's session.
    assert "test_every_library_error_has_its_status_and_body" in output, output
    assert "README.md::README.md PASSED" in output, output


@pytest.mark.postgres
def test_the_fastapi_example_passes_its_tests_on_postgres(tmp_path: Path, pg_dsn: str) -> None:
    output = _run_example(tmp_path, "postgres", dsn=pg_dsn)
    assert _passed(output, "postgresql") >= _clinic_tests(), output
