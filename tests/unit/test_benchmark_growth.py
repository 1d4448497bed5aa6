"""A smoke run of ``python -m benchmarks.growth`` at a tiny size, so that it cannot rot.

It checks that the table is printed and holds together (the statements are part of the whole
import, the rows of the table part of the statements), never how big any figure is.
"""

from __future__ import annotations

from pathlib import Path

from .test_benchmark_costs import run


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("+", ""))


def _figures(work: Path, *args: str) -> dict[str, list[str]]:
    """The rows of the tables ``python -m benchmarks.growth args`` prints, by first cell."""
    printed = run(*args, "--work", str(work), module="benchmarks.growth")
    return {
        _cells(line)[0]: _cells(line)[1:] for line in printed.splitlines() if line.startswith("| ")
    }


def test_the_growth_table_holds_together(tmp_path: Path) -> None:
    figures = _figures(tmp_path, "--rows", "200", "--late", "100")
    whole = [_number(cell) for cell in figures["the whole import"]]
    statements = [_number(cell) for cell in figures["the statements"]]
    assert all(0 < s <= w for s, w in zip(statements, whole, strict=True))
    rows = [cells for name, cells in figures.items() if name.startswith("`")]
    names = {name for name in figures if name.startswith("`")}
    assert {"`COMMIT`", "`INSERT INTO entries`"} <= names
    for column, total in ((2, statements[0]), (3, statements[1])):
        assert sum(_number(cells[column]) for cells in rows) <= total * 1.01 + 1
    for cells in rows:
        early, late, more = (_number(cells[i]) for i in (2, 3, 4))
        assert abs(late - early - more) <= 0.11


def test_the_simulate_table_holds_together(tmp_path: Path) -> None:
    figures = _figures(tmp_path, "--simulate", "4x2", "8x2")
    whole = [_number(cell) for cell in figures["the whole run"]]
    statements = [_number(cell) for cell in figures["the statements"]]
    assert all(0 < s <= w for s, w in zip(statements, whole, strict=True))
    assert figures["`COMMIT`"][0] == figures["`COMMIT`"][1] == "1.00"
