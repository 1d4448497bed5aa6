"""sessionpacks' entry points in a host's environment: pytest finds the plugin and hypothesis the
strategies with no import and no conftest line; neither changes a host's profile unasked,
imports sessionpacks on loading, or breaks pytest or hypothesis when something is missing.

The host's own test file is read from docs/testing-your-integration.md and run by a real pytest
in a folder of its own (the package is installed in this environment, so its entry points are).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import _sessionpacks_plugins
import sessionpacks
from sessionpacks import strategies

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "testing-your-integration.md"

# Makes ``import <name>`` fail as if the distribution were not installed; run with
# ``--assert=plain``, so that pytest puts no import hook of its own before this one.
_WITHOUT = """
import sys

class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {name!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def _host_files() -> dict[str, str]:
    marked = r"<!-- host-file: (\S+) -->\n```python\n(.*?)```"
    return dict(re.findall(marked, PAGE.read_text(encoding="utf-8"), re.DOTALL))


def _host_folder(tmp_path: Path) -> Path:
    for name, text in _host_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _run(
    folder: Path, *arguments: str, env: dict[str, str] | None = None, before: str = ""
) -> tuple[int, str]:
    """pytest on ``folder`` as a host runs it: in that folder, with none of our options and no
    CI variables; ``before`` is Python run first in the same process."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    main = before + "\nimport sys, pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            main,
            str(folder),
            "-p",
            "no:cacheprovider",
            "--color=no",
            *arguments,
        ],
        cwd=folder,
        env={**keep, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return ran.returncode, ran.stdout + ran.stderr


def _profile(output: str) -> str | None:
    found = re.search(r"^sessionpacks: hypothesis profile '([^']+)'", output, re.M)
    return found.group(1) if found else None


# What is installed ----------------------------------------------------------------------------


def test_both_entry_points_are_installed_and_point_beside_the_package() -> None:
    pytest11 = importlib.metadata.entry_points(group="pytest11", name="sessionpacks")
    hypothesis = importlib.metadata.entry_points(group="hypothesis", name="sessionpacks")
    assert [e.value for e in pytest11] == ["_sessionpacks_plugins"]
    assert [e.value for e in hypothesis] == ["_sessionpacks_plugins:_hypothesis_setup_hook"]
    (hook,) = tuple(hypothesis)
    assert hook.load() is _sessionpacks_plugins._hypothesis_setup_hook


def test_loading_the_entry_points_imports_neither_sessionpacks_nor_hypothesis() -> None:
    """pytest loads its plugins before pytest-cov starts, hypothesis runs its hooks while it is
    imported: an import of sessionpacks then would go unmeasured, or in a cycle."""
    code = (
        "import sys, _sessionpacks_plugins\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sessionpacks', 'hypothesis'}))"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"


def test_the_hook_registers_the_types_the_strategies_module_registers() -> None:
    registered = {t.__name__ for t in strategies._TYPE_STRATEGIES}
    assert set(_sessionpacks_plugins.VALUE_TYPES) == registered
    public_values = {
        name
        for name in sessionpacks.__all__
        if attrs.has(cls := getattr(sessionpacks, name)) and cls.__module__ == "sessionpacks.model"
    }
    assert public_values <= registered, sorted(public_values - registered)


_FROM_TYPE_WITHOUT_IMPORT = """
import sys
from hypothesis import strategies as st
import sessionpacks
assert "sessionpacks.strategies" not in sys.modules  # registered, not yet built
for name in {names!r}:
    cls = getattr(sessionpacks, name)
    assert isinstance(st.from_type(cls).example(), cls), name
assert "sessionpacks.strategies" in sys.modules
print("ok")
"""


def test_from_type_draws_every_value_type_with_no_import_of_the_strategies() -> None:
    code = _FROM_TYPE_WITHOUT_IMPORT.format(names=_sessionpacks_plugins.VALUE_TYPES)
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, "ok"), ran.stderr


def test_hypothesis_imports_when_sessionpacks_cannot_be() -> None:
    code = _WITHOUT.format(name="sessionpacks") + "import hypothesis\nprint('imported')\n"
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, "imported"), ran.stderr


# A host's suite -------------------------------------------------------------------------------


def test_the_host_file_on_the_page_is_ten_lines_and_imports_no_strategies() -> None:
    files = _host_files()
    assert set(files) == {"billing.py", "test_billing.py"}
    test_file = files["test_billing.py"]
    assert len(test_file.splitlines()) <= 10
    assert "st.from_type(" in test_file
    assert "sessionpacks.strategies" not in "".join(files.values())
    assert "import strategies" not in "".join(files.values())


def test_a_host_suite_property_tests_its_own_rule_with_from_type(tmp_path: Path) -> None:
    code, output = _run(_host_folder(tmp_path))
    assert code == 0, output
    assert "1 passed" in output, output
    # the plugin is loaded (the header is its own) and leaves hypothesis's profile alone
    assert _profile(output) == "default", output


def test_the_profiles_and_fixtures_come_with_the_entry_point(tmp_path: Path) -> None:
    folder = _host_folder(tmp_path)
    code, output = _run(folder, "--hypothesis-profile=sessionpacks-dev")
    assert code == 0, output
    assert "1 passed" in output, output
    assert _profile(output) == "sessionpacks-dev", output
    code, output = _run(folder, "--fixtures")
    assert code == 0, output
    for fixture in ("sessionpacks_practice", "sessionpacks_clock", "sessionpacks_service"):
        assert re.search(rf"^{fixture}\b", output, re.M), output


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SESSIONPACKS_HYPOTHESIS_PROFILE": "dev"}, "sessionpacks-dev"),
        ({"SESSIONPACKS_HYPOTHESIS_PROFILE": "ci"}, "sessionpacks-ci"),
        ({"CI": "true"}, "ci"),  # hypothesis's own, which it loads when it sees CI
    ],
)
def test_only_the_variable_asks_an_installed_plugin_for_a_profile(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    code, output = _run(_host_folder(tmp_path), env=environ)
    assert code == 0, output
    assert _profile(output) == expected, output


def test_a_host_profile_loaded_in_its_conftest_is_kept(tmp_path: Path) -> None:
    folder = _host_folder(tmp_path)
    (folder / "conftest.py").write_text(
        "from hypothesis import settings\n"
        "settings.register_profile('clinic', max_examples=7)\n"
        "settings.load_profile('clinic')\n"
    )
    code, output = _run(folder)
    assert code == 0, output
    assert _profile(output) == "clinic", output


def test_naming_the_plugin_as_in_0_1_0_loads_it_once_with_its_profile(tmp_path: Path) -> None:
    folder = _host_folder(tmp_path)
    (folder / "conftest.py").write_text('pytest_plugins = ["sessionpacks.testing.plugin"]\n')
    code, output = _run(folder)
    assert code == 0, output
    assert _profile(output) == "sessionpacks-dev", output
    code, output = _run(folder, "-p", "no:sessionpacks")  # the conftest line alone loads it
    assert code == 0, output
    assert _profile(output) == "sessionpacks-dev", output


def test_a_host_keeps_the_plugin_out_with_no_sessionpacks(tmp_path: Path) -> None:
    folder = _host_folder(tmp_path)
    code, output = _run(folder, "-p", "no:sessionpacks")
    assert code == 0, output  # from_type still works: that is hypothesis's entry point
    assert "1 passed" in output, output
    assert "sessionpacks:" not in output, output
    code, output = _run(folder, "-p", "no:sessionpacks", "--hypothesis-profile=sessionpacks-dev")
    assert code != 0, output
    assert "sessionpacks-dev" in output, output


def test_pytest_runs_without_hypothesis_and_says_why_there_is_no_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    code, output = _run(
        tmp_path,
        "--assert=plain",
        "-p",
        "no:hypothesispytest",  # hypothesis's own plugin, which is not there without it
        before=_WITHOUT.format(name="hypothesis"),
    )
    assert code == 0, output
    assert "1 passed" in output, output
    assert "sessionpacks: pytest plugin not loaded (hypothesis is not installed" in output, output


def test_pytest_runs_when_sessionpacks_cannot_be_imported(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    code, output = _run(tmp_path, "--assert=plain", before=_WITHOUT.format(name="sessionpacks"))
    assert code == 0, output
    assert "1 passed" in output, output
    assert "sessionpacks: pytest plugin not loaded (sessionpacks.testing.plugin cannot" in output
