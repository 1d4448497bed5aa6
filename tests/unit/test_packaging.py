"""What ``uv build`` makes: the wheel and the sdist carry the metadata, ``py.typed``, the
LICENSE and the CHANGELOG, and nothing of the work tree that is not the package.

One build per session (a module-scoped fixture). Without ``uv`` on PATH the tests skip, except
under ``CI=true``, where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import email.message
import email.parser
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import sessionpacks
from sessionpacks._cli.app import main

ROOT = Path(__file__).resolve().parents[2]
CLASSIFIERS = {
    "Development Status :: 4 - Beta",
    "Framework :: Hypothesis",
    "Framework :: Pytest",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Topic :: Office/Business",
    "Typing :: Typed",
}
CORE = {"attrs", "cattrs", "python-dateutil"}
FORBIDDEN_PARTS = {"tests", ".venv", "__pycache__", ".git"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class Built:
    def __init__(self, folder: Path) -> None:
        wheels = sorted(folder.glob("*.whl"))
        sdists = sorted(folder.glob("*.tar.gz"))
        assert len(wheels) == 1, f"expected one wheel, got {wheels}"
        assert len(sdists) == 1, f"expected one sdist, got {sdists}"
        self.wheel = wheels[0]
        self.sdist = sdists[0]
        with zipfile.ZipFile(self.wheel) as archive:
            self.wheel_names = archive.namelist()
            metadata = [n for n in self.wheel_names if n.endswith(".dist-info/METADATA")]
            assert len(metadata) == 1, metadata
            self.metadata = email.parser.Parser().parsestr(archive.read(metadata[0]).decode())
            points = [n for n in self.wheel_names if n.endswith(".dist-info/entry_points.txt")]
            self.entry_points = archive.read(points[0]).decode() if points else ""
        with tarfile.open(self.sdist) as archive:
            self.sdist_names = archive.getnames()
            info = [n for n in self.sdist_names if PurePosixPath(n).parts[1:] == ("PKG-INFO",)]
            assert len(info) == 1, info
            extracted = archive.extractfile(info[0])
            assert extracted is not None
            self.pkg_info = email.parser.Parser().parsestr(extracted.read().decode())

    def sdist_files(self) -> set[str]:
        """The sdist's paths without their ``sessionpacks-X.Y.Z/`` folder."""
        return {"/".join(PurePosixPath(n).parts[1:]) for n in self.sdist_names}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    uv = shutil.which("uv")
    if uv is None:
        if _in_ci():
            pytest.fail("CI=true needs uv on PATH to build the package", pytrace=False)
        pytest.skip("uv is not on PATH: the wheel and sdist are not built")
    folder = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [uv, "build", "--out-dir", str(folder), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"uv build failed:\n{done.stdout}\n{done.stderr}"
    return Built(folder)


def _requirements(metadata: email.message.Message) -> list[tuple[str, str]]:
    """Each Requires-Dist as (the requirement, the extra it is for or "")."""
    found = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
        found.append((requirement.strip(), extra.group(1) if extra else ""))
    return found


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_the_wheel_metadata_names_the_package_and_its_version(built: Built) -> None:
    metadata = built.metadata
    assert metadata["Name"] == "sessionpacks"
    assert metadata["Version"] == sessionpacks.__version__
    assert built.wheel.name.startswith(f"sessionpacks-{sessionpacks.__version__}-")
    assert built.sdist.name == f"sessionpacks-{sessionpacks.__version__}.tar.gz"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Summary"]
    assert metadata.get_payload(), "the README is the long description"


def test_the_license_is_mit(built: Built) -> None:
    metadata = built.metadata
    assert metadata["License-Expression"] == "MIT" or metadata["License"] == "MIT"
    assert "LICENSE" in (metadata.get_all("License-File") or [])


def test_the_classifiers(built: Built) -> None:
    classifiers = set(built.metadata.get_all("Classifier") or [])
    assert classifiers >= CLASSIFIERS, f"missing classifiers: {sorted(CLASSIFIERS - classifiers)}"
    # MIT is said by License-Expression; PEP 639 forbids a license classifier beside it.
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_the_core_dependencies_are_exactly_attrs_cattrs_and_dateutil(built: Built) -> None:
    core = {_name(r) for r, extra in _requirements(built.metadata) if not extra}
    assert core == CORE


def test_the_postgres_extras(built: Built) -> None:
    extras = set(built.metadata.get_all("Provides-Extra") or [])
    assert {"postgres", "postgres-binary", "testing"} <= extras
    requirements = _requirements(built.metadata)
    postgres = [r.replace(" ", "") for r, extra in requirements if extra == "postgres"]
    binary = [r.replace(" ", "") for r, extra in requirements if extra == "postgres-binary"]
    psycopg = [r for r in postgres if _name(r) == "psycopg"]
    assert psycopg, postgres
    assert not any("[" in r for r in psycopg), "postgres takes the driver without its binary"
    assert {_name(r) for r in postgres} == {"psycopg", "psycopg-pool"}
    assert any(r.startswith("psycopg[binary]") for r in binary), binary
    assert {_name(r) for r in binary} == {"psycopg", "psycopg-pool"}


def test_the_console_script(built: Built) -> None:
    assert re.search(r"^sessionpacks\s*=\s*sessionpacks\.cli:main$", built.entry_points, re.M)


def test_the_entry_points_of_pytest_and_hypothesis(built: Built) -> None:
    """Both load a module beside the package, so that loading them imports nothing of it."""
    sections = re.split(r"^\[([\w.-]+)\]\s*$", built.entry_points, flags=re.M)
    groups = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert re.search(r"^sessionpacks\s*=\s*_sessionpacks_plugins$", groups["pytest11"], re.M)
    assert re.search(
        r"^sessionpacks\s*=\s*_sessionpacks_plugins:_hypothesis_setup_hook$",
        groups["hypothesis"],
        re.M,
    )
    assert "_sessionpacks_plugins.py" in built.wheel_names
    assert "src/_sessionpacks_plugins.py" in built.sdist_files()


def test_the_wheel_holds_the_package_py_typed_and_the_license(built: Built) -> None:
    names = set(built.wheel_names)
    assert "sessionpacks/__init__.py" in names
    assert "sessionpacks/py.typed" in names
    licenses = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)]
    assert licenses, f"no LICENSE in the wheel's dist-info: {sorted(names)}"


def test_the_wheel_holds_nothing_but_the_package(built: Built) -> None:
    for name in built.wheel_names:
        parts = PurePosixPath(name).parts
        if name == "_sessionpacks_plugins.py":  # the entry points' module, beside the package
            continue
        assert parts[0] == "sessionpacks" or parts[0].endswith(".dist-info"), name
        assert not FORBIDDEN_PARTS & set(parts), name
        assert not name.endswith((".pyc", ".db")), name


def test_the_sdist_holds_the_license_changelog_and_sources(built: Built) -> None:
    files = built.sdist_files()
    for wanted in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "src/sessionpacks/__init__.py",
        "src/sessionpacks/py.typed",
    ):
        assert wanted in files, f"{wanted} is not in the sdist"
    assert built.pkg_info["Version"] == sessionpacks.__version__
    for name in files:
        parts = set(PurePosixPath(name).parts)
        assert not {".venv", "__pycache__", ".git"} & parts, name
        assert not name.endswith((".pyc", ".db-wal", ".db-shm")), name
        # A database file only as a test fixture (made by an earlier release), never a
        # demo's or a developer's file from the work tree.
        assert not name.endswith(".db") or "tests/fixtures/" in name, name


def test_the_license_and_changelog_in_the_sdist_are_the_work_tree_s(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        top = PurePosixPath(built.sdist_names[0]).parts[0]
        for name in ("LICENSE", "CHANGELOG.md"):
            member = archive.extractfile(f"{top}/{name}")
            assert member is not None
            assert member.read().decode() == (ROOT / name).read_text(encoding="utf-8")
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 the sessionpacks authors" in license_text


def test_version_is_read_lazily_from_the_metadata() -> None:
    assert sessionpacks.__version__ == importlib.metadata.version("sessionpacks")
    assert "__version__" not in sessionpacks.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = sessionpacks.no_such_name  # type: ignore[attr-defined]


def test_the_version_option_in_process() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["--version"], out=out, err=err) == 0
    assert out.getvalue() == f"sessionpacks {sessionpacks.__version__}\n"
    assert err.getvalue() == ""


def test_the_version_option_of_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionpacks", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"sessionpacks {sessionpacks.__version__}\n",
        "",
    )
