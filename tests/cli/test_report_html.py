"""``sessionpacks report --html FILE``: the page's figures equal the report's, its text is
escaped, it references nothing outside itself, a bad path writes nothing; and headless
Chromium renders it (a screenshot that is not blank, the same figures in the rendered DOM).

The figures the page should show are read here from the command line's own JSON (``report
--json`` for the period and for each week, ``packs --status open --expiring-within 30d``), not
from the page's module. The browser test finds Chromium at ``$SESSIONPACKS_CHROMIUM`` or on the
PATH (``scripts/chromium.sh`` installs Debian's package and prints its path); without one it is
skipped with a message, except under ``CI=true``, where it fails, as the PostgreSQL tests do
(``tests/pg_support.py``)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import attrs
import pytest

from sessionpacks import Allowance, InMemoryStore, Money, PackService, PackTerms, PerPack
from sessionpacks._cli import html_report
from sessionpacks.clock import FixedClock
from sessionpacks.model import format_amount

from ..cli_support import Cli

PERIOD = ("--from", "2026-03-01", "--to", "2026-04-01")
REPORT_NOW = "2026-03-25T09:00+11:00"
HOSTILE_NAME = '<b>4 x "Physio"</b> & <script>alert(1)</script>'
CHROMIUM_ENV = "SESSIONPACKS_CHROMIUM"


def appointment(appointment_id: str, client: str, start: str, currency: str) -> list[str]:
    return [appointment_id, "--client", client, "--service", "physio", "--start", start,
            "--duration", "45m", "--price", f"120.00 {currency}"]  # fmt: skip


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Two currencies, a template with a hostile name, ad hoc packs; sessions used in
    different weeks of March (the entries are recorded at each command's --now), one released;
    two packs expiring within 30 days of REPORT_NOW, one of them used up. Only read."""
    cli = Cli(tmp_path_factory.mktemp("html"), now="2026-03-02T09:00+11:00")
    cli.ok("--timezone", "Australia/Sydney", "template", "add", "physio-4", "--name",
           HOSTILE_NAME, "--sessions", "4", "--price", "100.00 AUD",
           "--valid-for", "6 months")  # fmt: skip
    cli.ok("template", "add", "nz-5", "--name", "5 x Massage (NZ)", "--sessions", "5",
           "--price", "200.00 NZD", "--service", "physio")  # fmt: skip
    cli.ok("pack", "open", "C1", "--template", "physio-4", "--pack-id", "P1")
    cli.ok("pack", "open", "C2", "--template", "nz-5", "--pack-id", "P2")
    soon = ("--price", "50.00 AUD", "--expires-on", "2026-04-10")
    cli.ok("pack", "open", "C3", "--pack-id", "P3", "--name", "Soon <i>", "--sessions", "2",
           *soon, now="2026-03-09T09:00+11:00")  # fmt: skip
    used_up = ("--price", "30.00 AUD", "--expires-on", "2026-04-05")
    cli.ok("pack", "open", "C4", "--pack-id", "P4", "--name", "One", "--sessions", "1",
           *used_up, now="2026-03-16T09:00+11:00")  # fmt: skip
    steps = [
        ("A1", "P1", "C1", "2026-03-03T10:00+11:00", "2026-03-03T11:00+11:00"),
        ("A2", "P1", "C1", "2026-03-10T10:00+11:00", "2026-03-10T11:00+11:00"),
        ("A3", "P2", "C2", "2026-03-12T10:00+11:00", "2026-03-12T11:00+11:00"),
        ("A4", "P3", "C3", "2026-03-17T10:00+11:00", "2026-03-17T11:00+11:00"),
        ("A5", "P4", "C4", "2026-03-18T10:00+11:00", "2026-03-18T11:00+11:00"),
    ]
    for appointment_id, pack, client, start, at in steps:
        currency = "NZD" if pack == "P2" else "AUD"
        cli.ok("appointment", "assign", *appointment(appointment_id, client, start, currency),
               "--pack", pack, now=at)  # fmt: skip
    cli.ok("appointment", "cancel", "A2", now="2026-03-24T09:00+11:00")
    return cli


# Reading a page back -------------------------------------------------------------------------


class Figures(HTMLParser):
    """Every ``data-figure`` element's key and text, and every tag and attribute seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[str, str] = {}
        self.repeated: list[str] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self._open: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        key = dict(attrs).get("data-figure")
        if key is not None:
            self._open.append((tag, key, []))

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _, key, text = self._open.pop()
            if key in self.figures:
                self.repeated.append(key)
            self.figures[key] = "".join(text)


def read_page(text: str) -> Figures:
    found = Figures()
    found.feed(text)
    found.close()
    assert not found.repeated, f"figures given twice: {found.repeated}"
    return found


# What the page should show, from the command line's JSON -----------------------------------


def amount(value: Any) -> str:
    return str(value["amount"]) if isinstance(value, dict) else str(value)


def balances(line: dict[str, Any]) -> str:
    def money(name: str) -> Decimal:
        return Decimal(line[name]["amount"])

    left = money("opening_unearned") + money("sold") - money("recognised") - money("breakage")
    left -= money("refunds") + money("written_off")
    return str(left == money("closing_unearned")).lower()


def weeks(first: date, end: date) -> Iterator[tuple[date, date]]:
    while first < end:
        yield first, min(first + timedelta(days=7), end)
        first += timedelta(days=7)


def total_figures(data: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for total in data["totals"]:
        key = f"total.{total['currency']}"
        found |= {f"{key}.{name}": amount(total[name]) for name in html_report.TOTAL_FIGURES}
        found[f"{key}.balances"] = balances(total)
    for line in data["lines"]:
        key = f"template.{line['currency']}.{line['template_id'] or '(ad hoc)'}"
        found |= {f"{key}.{name}": amount(line[name]) for name in html_report.LINE_FIGURES}
    return found


def week_figures(cli: Cli, currencies: list[str], now: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for first, after in weeks(date(2026, 3, 1), date(2026, 4, 1)):
        week = cli.ok("report", "--from", str(first), "--to", str(after), "--json", now=now)
        totals = {t["currency"]: t for t in week.json()["totals"]}
        key = f"week.{first.isoformat()}"
        found[f"{key}.sessions_used"] = str(sum(t["sessions_used"] for t in totals.values()))
        for currency in currencies:
            closing = totals[currency]["closing_unearned"] if currency in totals else None
            found[f"{key}.{currency}.closing_unearned"] = amount(closing) if closing else "0.00"
    return found


def expiring_figures(cli: Cli, now: str) -> dict[str, str]:
    packs = cli.ok("packs", "--status", "open", "--expiring-within", "30d", "--json", now=now)
    found = {"expiring.count": str(len(packs.json()["packs"]))}
    for pack in packs.json()["packs"]:
        key = f"expiring.{pack['pack_id']}"
        found[f"{key}.expiry_date"] = pack["expiry_date"]
        found[f"{key}.client"] = pack["client_id"]
        found[f"{key}.left"] = format_amount(pack["remaining"])  # session packs: a count
    return found


def expected(cli: Cli, now: str = REPORT_NOW) -> dict[str, str]:
    whole = cli.ok("report", *PERIOD, "--json", now=now).json()
    currencies = [t["currency"] for t in whole["totals"]]
    today = datetime.fromisoformat(now).astimezone(ZoneInfo("Australia/Sydney")).date()
    return {
        "period.start": "2026-03-01",
        "period.end": "2026-04-01",
        "today": today.isoformat(),
        **total_figures(whole),
        **week_figures(cli, currencies, now),
        **expiring_figures(cli, now),
    }


def page_of(cli: Cli, name: str = "report.html", *more: str) -> str:
    target = cli.folder / name
    ran = cli.ok("report", *PERIOD, "--html", str(target), *more, now=REPORT_NOW)
    assert f"HTML report written to {target}" in ran.err
    return target.read_text(encoding="utf-8")


# The page ------------------------------------------------------------------------------------


def test_every_figure_in_the_page_equals_the_reports(clinic: Cli) -> None:
    shown = read_page(page_of(clinic)).figures
    wanted = expected(clinic)
    assert shown == wanted
    # The fixture is what it says: both currencies, weeks with sessions, a release, expiries.
    assert {"total.AUD.sold", "total.NZD.sold"} <= set(shown)
    assert shown["total.AUD.recognised"] == "80.00"  # A1 25.00, A4 25.00, A5 30.00
    assert shown["expiring.count"] == "1"  # P3; P4 expires too, but is used up
    assert shown["week.2026-03-22.sessions_used"] == "-1"  # A2 released that week


def test_the_printed_report_is_the_same_with_or_without_html(clinic: Cli) -> None:
    plain = clinic.ok("report", *PERIOD, "--json", now=REPORT_NOW).out
    with_page = clinic.ok(
        "report", *PERIOD, "--json", "--html", str(clinic.folder / "j.html"), now=REPORT_NOW
    )
    assert with_page.out == plain
    csv_rows = clinic.ok("report", *PERIOD, "--csv", now=REPORT_NOW).out
    assert clinic.ok("report", *PERIOD, "--csv", "--html", str(clinic.folder / "c.html"),
                     now=REPORT_NOW).out == csv_rows  # fmt: skip


def test_the_page_references_nothing_outside_itself(clinic: Cli) -> None:
    text = page_of(clinic)
    assert not re.search(r"https?:|ftp:|//[a-z0-9]", text, re.IGNORECASE)
    assert not re.search(r"\b(src|href|action|srcset|xlink:href)\s*=", text, re.IGNORECASE)
    assert "url(" not in text
    assert "@import" not in text
    read = read_page(text)
    assert not read.tags & {"script", "link", "img", "iframe", "object", "embed", "base", "a"}
    assert not {a for a in read.attributes if a.startswith("on")}  # no event handlers
    assert "Content-Security-Policy" in text
    assert "default-src &#x27;none&#x27;" in text  # escaped like every attribute


def test_every_text_is_escaped(clinic: Cli) -> None:
    text = page_of(clinic)
    assert "<b>" not in text
    assert "<script" not in text.lower()
    assert "<i>" not in text
    assert html_escaped(HOSTILE_NAME) in text
    assert "Soon &lt;i&gt;" not in text  # ad hoc packs are shown as a group, not by name
    read = read_page(text)
    assert not read.tags & {"b", "i", "script"}


def html_escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


@pytest.fixture
def small() -> PackService:
    zone = ZoneInfo("Australia/Sydney")
    clock = FixedClock(datetime(2026, 3, 2, 9, tzinfo=zone))
    service = PackService(InMemoryStore().practice("clinic-1", timezone=zone.key), clock)
    terms = PackTerms("Physio", Allowance.sessions(4), PerPack(Money("100.00", "AUD")))
    service.add_template("t1", terms)
    service.open_pack("C1", template_id="t1", pack_id="P1")
    return service


def test_render_is_a_pure_function_that_escapes_every_text(small: PackService) -> None:
    page = html_report.gather(small, date(2026, 3, 1), date(2026, 3, 15))
    assert html_report.render(page) == html_report.render(page)
    hostile = attrs.evolve(
        page,
        practice="<script>alert('p')</script>",
        names={"t1": '<img src=x onerror="alert(1)">'},
    )
    text = html_report.render(hostile)
    assert "<script" not in text
    assert "<img" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert read_page(text).figures == read_page(html_report.render(page)).figures


def test_the_page_says_what_it_holds_at_its_edges(small: PackService) -> None:
    zone = ZoneInfo("Australia/Sydney")
    cut = datetime(2026, 3, 2, 12, tzinfo=zone)
    page = html_report.gather(small, date(2026, 3, 1), date(2026, 3, 1), as_of=cut)
    text = html_report.render(page)
    assert f"as recorded before {cut.isoformat()}" in text
    assert "Nothing to chart." in text  # an empty period has no weeks
    (pack,) = small.client_packs("C1")
    many = attrs.evolve(page, expiring=(pack,) * (html_report.MAX_EXPIRING_ROWS + 5))
    assert "and 5 more" in html_report.render(many)


def test_an_interrupted_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(source: object, destination: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        html_report.write(str(tmp_path / "page.html"), "<!DOCTYPE html>")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_practice_gives_a_page_that_says_so(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    target = tmp_path / "empty.html"
    cli.ok("--timezone", "Australia/Sydney", "report", *PERIOD, "--html", str(target))
    text = target.read_text(encoding="utf-8")
    assert "No packs in this period." in text
    assert read_page(text).figures["expiring.count"] == "0"


def test_the_weeks_are_cut_from_the_first_date() -> None:
    bounds = html_report.week_bounds(date(2026, 3, 1), date(2026, 3, 17))
    assert bounds == [
        (date(2026, 3, 1), date(2026, 3, 8)),
        (date(2026, 3, 8), date(2026, 3, 15)),
        (date(2026, 3, 15), date(2026, 3, 17)),
    ]
    assert html_report.week_bounds(date(2026, 3, 1), date(2026, 3, 1)) == []


# Writing the file ----------------------------------------------------------------------------


def test_a_folder_that_does_not_exist_is_an_error_and_nothing_is_written(clinic: Cli) -> None:
    target = clinic.folder / "no-such-folder" / "report.html"
    ran = clinic("report", *PERIOD, "--html", str(target), now=REPORT_NOW)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith("sessionpacks: No such file or directory: ")
    assert "no-such-folder" in ran.err
    assert not target.parent.exists()


def test_a_folder_as_the_file_is_an_error_and_leaves_nothing_behind(
    clinic: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    ran = clinic("report", *PERIOD, "--html", str(folder), "--json", now=REPORT_NOW)
    assert (ran.code, ran.out) == (1, "")
    assert '"error": "OSError"' in ran.err
    assert "a-folder" in ran.err
    assert list(tmp_path.iterdir()) == [folder]
    assert list(folder.iterdir()) == []


def test_a_failed_write_keeps_the_old_file_whole(
    clinic: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("the old page", encoding="utf-8")

    def refuse(source: object, destination: object) -> None:
        raise OSError(28, "No space left on device", str(source))

    monkeypatch.setattr(os, "replace", refuse)
    ran = clinic("report", *PERIOD, "--html", str(target), now=REPORT_NOW)
    assert ran.code == 1
    assert ran.err == f"sessionpacks: No space left on device: '{target}'\n"
    assert target.read_text(encoding="utf-8") == "the old page"
    assert list(tmp_path.iterdir()) == [target]


def test_an_existing_file_is_replaced(clinic: Cli, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("the old page", encoding="utf-8")
    clinic.ok("report", *PERIOD, "--html", str(target), now=REPORT_NOW)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--html", ""), 2, "argument --html: must not be empty"),
        (("--html", "a\x00b"), 2, "argument --html"),
        (("--from", "2026-01-01", "--to", "2031-01-10", "--html", "x.html"), 2, "at most 260"),
    ],
)
def test_bad_html_arguments_are_usage_errors(
    clinic: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    argv = args if "--from" in args else (*PERIOD, *args)
    ran = clinic("report", *argv, now=REPORT_NOW)
    assert ran.code == code, ran.err
    assert message in ran.err
    assert not (clinic.folder / "x.html").exists()


# In a browser --------------------------------------------------------------------------------


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail under CI=true, where the browser test must run."""
    if under_ci():
        pytest.fail(f"CI=true needs Chromium and there is none: {reason}", pytrace=False)
    pytest.skip(
        f"no Chromium: {reason}; run 'bash scripts/chromium.sh' (installs Debian's chromium) "
        f"or set {CHROMIUM_ENV}"
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    named = os.environ.get(CHROMIUM_ENV, "")
    if named:
        if not os.access(named, os.X_OK):
            unavailable(f"{CHROMIUM_ENV}={named} is not an executable file")
        return named
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return unavailable("neither chromium nor chromium-browser is on the PATH")


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Headless Chromium on a file:// page, with a profile of its own and no network: every
    host name resolves to nothing, and nothing runs in the background."""
    command = [
        chromium, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-default-apps", "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
    return subprocess.run(command, capture_output=True, timeout=120, check=False)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """A PNG's width, height and pixels (each an RGB or RGBA byte string), decoded with the
    standard library: chunks, zlib, and the five scanline filters (8-bit RGB or RGBA only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: dict[bytes, bytes] = {}
    at, idat = 8, bytearray()
    while at < len(data):
        (size,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        body, (crc,) = data[at + 8 : at + 8 + size], struct.unpack(">I", data[at + 8 + size :][:4])
        assert zlib.crc32(kind + body) == crc, f"a damaged {kind!r} chunk"
        if kind == b"IDAT":
            idat += body
        chunks.setdefault(kind, body)
        at += 12 + size
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, interlace) == (8, 0), (depth, interlace)
    assert colour in (2, 6), colour  # RGB or RGBA
    bpp = 3 if colour == 2 else 4
    rows = unfilter(zlib.decompress(bytes(idat)), width * bpp, height, bpp)
    pixels = [bytes(row[i : i + bpp]) for row in rows for i in range(0, len(row), bpp)]
    return width, height, pixels


def unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytearray]:
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + paeth(left, up, corner)) & 0xFF
        rows.append(line)
        previous = line
    return rows


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def test_png_decoding_reads_every_filter() -> None:
    # A 2 x 2 RGB image: one row with the Sub filter and one with Paeth.
    raw = bytes([1, 10, 20, 30, 5, 5, 5, 4, 1, 1, 1, 0, 0, 0])
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    png += chunk(b"IEND", b"")
    assert png_pixels(png) == (
        2, 2, [bytes([10, 20, 30]), bytes([15, 25, 35]), bytes([11, 21, 31]), bytes([15, 25, 35])]
    )  # fmt: skip


def test_chromium_renders_the_page_with_the_reports_figures(
    clinic: Cli, chromium: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    clinic.ok("report", *PERIOD, "--html", str(page), now=REPORT_NOW)
    shot = tmp_path / "shot.png"
    began = time.monotonic()
    ran = browse(chromium, tmp_path / "profile", f"--screenshot={shot}",
                 "--window-size=800,1400", page.as_uri())  # fmt: skip
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")[-2000:]
    assert shot.exists(), ran.stderr.decode(errors="replace")[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (800, 1400)
    colours = {p[:3] for p in pixels}
    inked = sum(1 for p in pixels if p[:3] != b"\xff\xff\xff" and p[:3] != b"\xf4\xf6\xf9")
    assert len(colours) > 50, f"a blank page: {len(colours)} colours"
    assert inked > width * height // 20, f"a blank page: {inked} pixels not background"
    assert b"\x2c\x6e\x91" in colours  # the bars and headings' blue: the charts are drawn

    dom = browse(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    rendered = read_page(dom.stdout.decode("utf-8"))
    assert rendered.figures == expected(clinic)
    assert "svg" in rendered.tags
    assert time.monotonic() - began < 120
