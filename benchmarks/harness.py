"""The harness: contenders measured in interleaved rounds, a table of medians and spreads.

A *contender* is one thing being timed (sessionpacks, or a baseline), set up once and asked for
one round at a time. :func:`interleave` runs the contenders of a workload in turns (A, B, A,
B, ...), rotating who goes first, so that a change in the machine's load touches all alike.
Each round returns its metrics (a rate, a time, a peak memory...); a :class:`Row` of the table
compares one metric's rounds with a baseline's, by their medians.

Targets are printed beside the measured ratio as "met" or "missed". Nothing here asserts
them: a benchmark never decides whether a test passes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

Metrics = dict[str, float]

RESULTS_START = "<!-- benchmark results: start (written by python -m benchmarks) -->"
RESULTS_END = "<!-- benchmark results: end -->"


class Contender(Protocol):
    """One thing timed: a name, one round of work, and its cleanup."""

    name: str

    def round(self) -> Metrics: ...

    def close(self) -> None: ...


def interleave(contenders: Sequence[Contender], rounds: int) -> dict[str, list[Metrics]]:
    """Every contender's metrics, round by round, measured in turns; the first to go rotates
    each round so that neither always runs on a cold (or a warm) machine."""
    results: dict[str, list[Metrics]] = {c.name: [] for c in contenders}
    for number in range(rounds):
        shift = number % len(contenders)
        for contender in [*contenders[shift:], *contenders[:shift]]:
            results[contender.name].append(contender.round())
    return results


def series(rounds: list[Metrics], metric: str) -> list[float]:
    return [r[metric] for r in rounds if metric in r]


@dataclass(frozen=True)
class Target:
    """What the issue asks for, and how to judge a row against it (``None``: cannot say)."""

    text: str
    check: Callable[[Row], bool | None]


@dataclass
class Row:
    """One line of the table: a measured series against a baseline's, in one unit."""

    workload: str
    unit: str
    measured: list[float]
    baseline: str = "-"
    base: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.measured) if self.measured else None

    @property
    def ratio(self) -> float | None:
        if not self.measured or not self.base or statistics.median(self.base) == 0:
            return None
        return statistics.median(self.measured) / statistics.median(self.base)

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        met = self.target.check(self)
        return "n/a" if met is None else ("met" if met else "missed")

    def data(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "unit": self.unit,
            "measured": self.measured,
            "median": self.median,
            "baseline": self.baseline,
            "base": self.base,
            "base_median": statistics.median(self.base) if self.base else None,
            "ratio": self.ratio,
            "target": self.target.text if self.target else None,
            "verdict": self.verdict,
            "note": self.note,
        }


def ratio_at_least(limit: float) -> Target:
    return Target(f">= {limit:g} x baseline", lambda row: _compare(row.ratio, limit))


def median_at_least(limit: float, unit: str) -> Target:
    return Target(f">= {limit:,g} {unit}", lambda row: _compare(row.median, limit))


def median_below(limit: float, unit: str) -> Target:
    return Target(
        f"< {limit:,g} {unit}", lambda row: None if row.median is None else row.median < limit
    )


def _compare(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def number(value: float) -> str:
    """Three significant figures or more, with thousands separators."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def spread(values: list[float]) -> str:
    """``median (min-max, n=rounds)``, or ``-`` for no value."""
    if not values:
        return "-"
    middle = number(statistics.median(values))
    if len(values) == 1:
        return f"{middle} (n=1)"
    return f"{middle} ({number(min(values))}–{number(max(values))}, n={len(values)})"


COLUMNS = (
    "workload",
    "sessionpacks: median (min–max)",
    "baseline",
    "baseline: median (min–max)",
    "ratio",
    "target",
    "target met?",
)


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for row in rows:
        ratio = row.ratio
        cells = [
            f"{row.workload} ({row.unit})" + (f"; {row.note}" if row.note else ""),
            spread(row.measured),
            row.baseline,
            spread(row.base),
            "-" if ratio is None else f"{ratio:.3g}",
            row.target.text if row.target else "-",
            row.verdict,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# The machine and the versions ----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{pages * size / 2**30:.1f} GiB"


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    """The commit measured, and whether the work tree had changes beside it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    elsewhere = _imported_from(root)
    if elsewhere:
        return f"{head or 'unknown'} checked out, but {elsewhere}, not its src/"
    return f"{head} (with uncommitted changes in src/)" if dirty else (head or "unknown")


def _imported_from(root: Path) -> str:
    """Where sessionpacks was imported from, if not from ``root``'s src/ (say, an export of
    one commit put first on ``PYTHONPATH``); ``""`` if from there or not imported."""
    module = sys.modules.get("sessionpacks")
    where = getattr(module, "__file__", None)
    if not where:
        return ""
    folder = Path(where).resolve().parent
    return "" if folder.is_relative_to(root / "src") else f"sessionpacks imported from {folder}"


def machine(postgres_server: str) -> dict[str, str]:
    """What the figures were measured on."""
    try:
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _ram(),
        "load average at start (1, 5, 15 min)": load,
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL server": postgres_server,
        "psycopg": version("psycopg"),
        "eventsourcing": version("eventsourcing"),
        "sessionpacks": f"{version('sessionpacks')}, commit {commit()}",
    }


# The report ----------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything one run found: the machine, the sizes, notes, and the rows."""

    machine: dict[str, str]
    sizes: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label: str = ""

    def markdown(self) -> str:
        facts = "\n".join(f"| {k} | {v} |" for k, v in self.machine.items())
        notes = "".join(f"- {n}\n" for n in self.notes)
        return (
            (f"**{self.label}**\n\n" if self.label else "")
            + f"Measured {self.machine['date']}, sizes: {self.sizes}.\n\n"
            "| machine | |\n| --- | --- |\n"
            f"{facts}\n\n{table(self.rows)}\n" + (f"\n{notes}" if notes else "")
        )

    def data(self) -> dict[str, object]:
        return {
            "machine": self.machine,
            "sizes": self.sizes,
            "label": self.label,
            "notes": self.notes,
            "rows": [r.data() for r in self.rows],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.data(), indent=2) + "\n", encoding="utf-8")


def write_page(page: Path, results: str) -> None:
    """Put ``results`` between the page's result markers (the rest of the page is prose kept
    by hand); a page without the markers gets them at its end."""
    text = page.read_text(encoding="utf-8") if page.exists() else "# Performance\n"
    block = f"{RESULTS_START}\n\n{results.rstrip()}\n\n{RESULTS_END}"
    if RESULTS_START in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_START, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    page.write_text(text, encoding="utf-8")


def say(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
