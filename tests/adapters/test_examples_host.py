"""The worked host example, examples/host_sqlite, passes its own tests.

It is run as a host would run it: pytest on the folder, in a process of its own, with the
folder's pytest.ini (not the library's options) and its conftest loading
``sessionpacks.testing.plugin``. The hypothesis profile is inherited from this run's
environment (``SESSIONPACKS_HYPOTHESIS_PROFILE``, ``CI``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sessionpacks.testing import RepositoryContract

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "host_sqlite"


def test_the_host_example_passes_the_contract_the_machine_and_its_own_rule(
    tmp_path: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # From a scratch directory, so hypothesis's example database lands there, not in the tree.
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE), "-v", "--color=no"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert "sessionpacks: hypothesis profile" in output, "the plugin was not loaded"
    passed = set(re.findall(r"test_host\.py::(\w+)(?:::(\w+))?\S* PASSED", output))
    contract = {name for name in dir(RepositoryContract) if name.startswith("test_")}
    assert {("TestClinicContract", name) for name in contract} <= passed, output
    assert ("TestClinicMachine", "runTest") in passed, output
    assert ("test_a_client_never_pays_twice_for_one_appointment", "") in passed, output
    assert not re.search(r" (FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", output), output


def _excerpts(page: Path) -> list[tuple[str, str]]:
    """``(path, code)`` for each code block marked ``<!-- excerpt: path -->`` on the page (and
    ``<!-- fmt: off -->``, so that ruff leaves its indentation as in the source)."""
    marked = r"<!-- excerpt: (\S+) -->\n<!-- fmt: off -->\n```python\n(.*?)```\n<!-- fmt: on -->"
    return re.findall(marked, page.read_text(encoding="utf-8"), re.DOTALL)


def test_the_store_how_to_quotes_the_example_as_it_is() -> None:
    root = EXAMPLE.parents[1]
    excerpts = _excerpts(root / "docs" / "writing-a-store.md")
    assert len(excerpts) >= 4
    for path, code in excerpts:
        assert code in (root / path).read_text(encoding="utf-8"), f"{path} no longer has:\n{code}"
