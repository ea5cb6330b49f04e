"""The HTML report opened in a real headless Chromium (the system browser, never a download).

Builds a report of a synthetic dataset (three families, two weeks, a price file; one type
drops 20 % in the second week, one has too few instances to be tested for a change) and
of an empty dataset through the installed `instbench` console script, then checks in the
browser: every page loads without a console error, no request leaves the machine, the
overview table sorts and filters, every chart is a non-empty SVG, the change point is
marked on the history chart with its size and interval and the untested series are
listed, and the overview is saved as a screenshot under test-artifacts/.

Chromium comes from Debian (`apt-get install -y chromium chromium-driver`); when it is
missing the test fails and says so (CI installs it), it is not skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.factories import go_collector_document, result_document, store_documents

INSTBENCH = str(Path(sys.executable).parent / "instbench")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium chromium-driver"

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def _dataset(root: Path) -> Path:
    docs: list[dict[str, Any]] = []
    weeks = [datetime(2025, 3, 3, 12, tzinfo=UTC), datetime(2025, 3, 11, 12, tzinfo=UTC)]
    types = {
        "m7i.large": 40.0,
        "m7i.xlarge": 70.0,
        "c7g.large": 55.0,
        "r7a.large": 48.0,
    }
    for itype, gbps in types.items():
        for w, ts in enumerate(weeks):
            for i in range(2):
                if (itype, w, i) == ("r7a.large", 1, 1):
                    continue  # 2 + 1 instances: too few to test for a change
                drop = 0.8 if (itype, w) == ("m7i.large", 1) else 1.0  # a -20 % step
                docs.append(
                    result_document(
                        itype,
                        bandwidth_gbps=gbps * drop * (1 + 0.02 * i - 0.01 * w),
                        sample=i,
                        run_id=f"run-{w}",
                        timestamp=ts,
                    )
                )
    mirror = root / "mirror"
    store_documents(mirror, docs)
    prices = {
        "as_of": "2025-03-01",
        "region": "us-east-1",
        "source": "test",
        "instances": {
            "m7i.large": {"on_demand": 0.1008},
            "m7i.xlarge": {"on_demand": 0.2016},
            "c7g.large": {"on_demand": 0.0725},
        },
    }
    (root / "prices.json").write_text(json.dumps(prices))
    # The earlier Go collector's files: one m7i.large STREAM, a c7g.large one with the x86
    # amd-zen4 image, and two placeholders (41.9 GB/s triad for two types).
    old = root / "old" / "results" / "2025-06-30"
    old.mkdir(parents=True)
    legacy = {
        "m7i.large-stream.json": go_collector_document("stream", "m7i.large", figure=14.5),
        "c7g.large-stream.json": go_collector_document(
            "stream", "c7g.large", figure=52.4, label="graviton", image_tag="amd-zen4"
        ),
        "c5.large-stream.json": go_collector_document("stream", "c5.large", figure=41.9),
        "r5.large-stream.json": go_collector_document("stream", "r5.large", figure=41.9),
    }
    for name, doc in legacy.items():
        (old / name).write_text(json.dumps(doc))
    return mirror


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    mirror = _dataset(root)
    proc = _cli("import", "legacy", str(root / "old"), "--output-dir", str(mirror))
    assert proc.returncode == 0, proc.stderr
    assert "│ imported  " in proc.stdout.replace("│ imported │", "│ imported  ")
    full = root / "site"
    proc = _cli(
        "report",
        "--input",
        str(mirror),
        "--output",
        str(full),
        "--prices",
        str(root / "prices.json"),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"report: {(full / 'index.html').resolve()}" in proc.stdout
    empty_input = root / "empty"
    (empty_input / "raw").mkdir(parents=True)
    empty = root / "empty-site"
    proc = _cli("report", "--input", str(empty_input), "--output", str(empty))
    assert proc.returncode == 0, proc.stderr
    return {"full": full, "empty": empty, "mirror": mirror}


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("playwright is missing: pip install -e '.[dev]' (never `playwright install`)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.requests = []  # type: ignore[attr-defined]
            page.errors = []  # type: ignore[attr-defined]
            context.on("request", lambda r: page.requests.append(r.url))  # type: ignore[attr-defined]
            page.on(
                "console",
                lambda m: page.errors.append(m.text) if m.type == "error" else None,  # type: ignore[attr-defined]
            )
            page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
            yield page
        finally:
            context.close()


def _open(page: Any, path: Path) -> None:
    page.requests.clear()
    page.errors.clear()
    page.goto(path.resolve().as_uri(), wait_until="load")
    assert page.errors == [], f"{path.name}: console errors {page.errors}"
    leaving = [
        u
        for u in page.requests
        if not u.startswith(("file://", "http://127.0.0.1", "data:", "about:"))
    ]
    assert leaving == [], f"{path.name}: requests leaving the machine: {leaving}"


def _column(page: Any, index: int) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "#overview tbody tr",
            f"rows => rows.map(r => r.cells[{index}].getAttribute('data-value') || '')",
        )
    )


def test_every_page_loads_offline_without_errors(sites: dict[str, Path], browser_page: Any) -> None:
    site = sites["full"]
    pages = sorted(site.rglob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "charts.html", "methodology.html"}
    assert len(list((site / "types").glob("*.html"))) == 4
    for path in pages:
        _open(browser_page, path)
        assert browser_page.title().endswith("instbench")


def test_overview_sorts_filters_and_is_saved_as_a_screenshot(
    sites: dict[str, Path], browser_page: Any
) -> None:
    page = browser_page
    _open(page, sites["full"] / "index.html")
    headers = page.eval_on_selector_all("#overview thead th", "hs => hs.map(h => h.innerText)")
    assert any("$/h" in h for h in headers) and any("GB/s per $/h" in h for h in headers)
    triad = next(i for i, h in enumerate(headers) if h.startswith("Triad"))
    page.click(f"#overview thead th:nth-child({triad + 1}) button")
    asc = [float(v) for v in _column(page, triad)]
    assert asc == sorted(asc) and len(asc) == 4
    assert page.get_attribute(f"#overview thead th:nth-child({triad + 1})", "aria-sort") == (
        "ascending"
    )
    page.click(f"#overview thead th:nth-child({triad + 1}) button")
    desc = [float(v) for v in _column(page, triad)]
    assert desc == sorted(desc, reverse=True)
    page.click("#overview thead th:nth-child(1) button")
    assert _column(page, 0) == sorted(_column(page, 0))

    page.fill("#filter-text", "m7i")
    visible = page.eval_on_selector_all(
        "#overview tbody tr", "rows => rows.filter(r => !r.hidden).length"
    )
    assert visible == 2
    assert "2 of 4" in page.inner_text("#filter-count")
    page.fill("#filter-text", "")

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_every_chart_renders_with_labels(sites: dict[str, Path], browser_page: Any) -> None:
    page = browser_page
    _open(page, sites["full"] / "charts.html")
    figures = page.eval_on_selector_all(
        "figure.chart svg",
        """svgs => svgs.map(s => ({w: s.getBoundingClientRect().width,
                                   h: s.getBoundingClientRect().height,
                                   marks: s.querySelectorAll('path, rect, line').length,
                                   text: s.textContent}))""",
    )
    assert len(figures) == 4  # bandwidth, scaling, price, history
    for fig in figures:
        assert fig["w"] > 100 and fig["h"] > 50 and fig["marks"] > 5, fig
    text = " ".join(f["text"] for f in figures)
    for label in ("GB/s", "USD/h", "Architecture / vendor", "Family", "Instance type", "week"):
        assert label in text, label
    _open(page, sites["full"] / "types" / "m7i.large.html")
    spread = page.eval_on_selector_all(
        "figure.chart svg", "svgs => svgs.map(s => s.querySelectorAll('path').length)"
    )
    assert len(spread) == 2 and all(n > 5 for n in spread)  # spread + history
    body = page.inner_text("main")
    assert "AMI" in body and "-march=native" in body and "gcc" in body
    raw = page.get_attribute("main ul li a", "href")
    assert raw and raw.startswith("../raw/stream/m7i.large/")
    assert (sites["full"] / "types" / raw).resolve().is_file()


def test_change_points_are_marked_and_untested_series_listed(
    sites: dict[str, Path], browser_page: Any
) -> None:
    page = browser_page
    _open(page, sites["full"] / "types" / "m7i.large.html")
    changes = page.inner_text("#changes")
    assert "2025-W11" in changes and "−20.8 % [" in changes
    history = page.eval_on_selector_all(
        "figure.chart svg", "svgs => svgs.map(s => s.textContent).join(' ')"
    )
    assert "m7i.large: −20.8 % [" in history  # the dashed line's label on the chart
    _open(page, sites["full"] / "types" / "r7a.large.html")
    assert "no window boundary leaves 2 samples on each side" in page.inner_text("#untested")
    _open(page, sites["full"] / "types" / "c7g.large.html")
    assert "No change point found" in page.inner_text("main")
    shown = _cli("results", "show", "m7i.large", "--input", str(sites["mirror"]))
    assert shown.returncode == 0, shown.stderr
    assert "change point 2025-W11: stream triad all bandwidth" in shown.stdout
    assert "−20.8 % [" in shown.stdout
    untested = _cli("results", "show", "r7a.large", "--input", str(sites["mirror"]))
    assert "not tested: stream triad all bandwidth" in untested.stdout


def test_empty_dataset_report_says_so(sites: dict[str, Path], browser_page: Any) -> None:
    for name in ("index.html", "charts.html", "methodology.html"):
        _open(browser_page, sites["empty"] / name)
        assert "No results in this dataset yet" in browser_page.inner_text("main")
    assert not (sites["empty"] / "types").exists()


def test_price_chart_is_a_note_without_prices(tmp_path: Path, browser_page: Any) -> None:
    mirror = tmp_path / "mirror"
    store_documents(mirror, [result_document("m7i.large", sample=i) for i in range(2)])
    out = tmp_path / "site"
    proc = _cli("report", "--input", str(mirror), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    _open(browser_page, out / "charts.html")
    assert "No price data" in browser_page.inner_text("main")
    _open(browser_page, out / "index.html")
    assert "$/h" not in browser_page.inner_text("#overview thead")


def test_legacy_history_is_shown_beside_ours_never_pooled(
    sites: dict[str, Path], browser_page: Any
) -> None:
    page = browser_page
    _open(page, sites["full"] / "types" / "m7i.large.html")
    history = page.inner_text("#legacy-history")
    assert "legacy-stream" in history and "one thread, one pass" in history
    assert "triad 14.50 GB/s" in history and "results/2025-06-30/m7i.large-stream.json" in history
    # Ours alone in the results table: 4 instances (2 weeks x 2), no legacy series.
    results = page.inner_text("main table:not(.legacy)")
    assert "legacy" not in results
    triad = page.eval_on_selector_all(
        "main table:not(.legacy) tbody tr",
        "rows => rows.filter(r => r.cells[0].innerText === 'stream' && "
        "r.cells[1].innerText === 'triad' && r.cells[2].innerText === 'all')"
        ".map(r => r.cells[4].innerText)",
    )
    assert triad == ["4"]
    _open(page, sites["full"] / "index.html")
    overview = page.inner_text("#legacy-history")
    assert "c7g.large" in overview
    assert "container image public.ecr.aws/aws-benchmarks/stream:amd-zen4 is for x86_64" in overview
    assert "41.9" not in page.content() and "c5.large" not in overview
    # Types we measured too link to their page; sorting works here as well.
    page.click("#legacy-history thead th:nth-child(4) button")
    values = page.eval_on_selector_all(
        "#legacy-history tbody tr", "rows => rows.map(r => parseFloat(r.cells[3].dataset.value))"
    )
    assert values == [14.5, 52.4]  # one row per file, sorted by its triad
    links = page.eval_on_selector_all(
        "#legacy-history tbody a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert set(links) == {"types/c7g.large.html", "types/m7i.large.html"}
