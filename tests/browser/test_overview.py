"""The overview and model pages: totals and their change for seeded data, the models table, the
comparison by a metadata field, and that the page reads on a laptop, a wall monitor and by keyboard."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import (
    CANADA,
    CURRENT,
    MEXICO,
    PCB,
    PCB_EXTRA,
    PREVIOUS,
    SORTER,
    TOTAL,
    XSS,
    Tab,
    watched,
)
from tests.conftest import ingest, item, open_workspace
from tests.server import Server


def kpi(page: Page, key: str, role: str = "value") -> str:
    return page.inner_text(f".kpi[data-key={key}] [data-role={role}]")


def test_overview_shows_the_seeded_totals_and_the_change_from_the_previous_week(tab: Tab) -> None:
    page = tab.open("/overview")
    tab.shot("overview")
    assert kpi(page, "inferences") == str(TOTAL)
    change = (TOTAL - PREVIOUS) / PREVIOUS * 100
    assert f"▲ {change:.1f}%" in kpi(page, "inferences", "delta")
    assert f"({PREVIOUS})" in kpi(page, "inferences", "delta")
    # Devices: cam-0..2, sorter-box and the one named like a tag, all active this week.
    assert kpi(page, "devices") == "5"
    for chart in ("volume", "confidence", "classes", "latency", "confidence-time"):
        assert page.locator(f"#chart-{chart} .main-svg").count() > 0, chart
    rows = page.locator("#models-table tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("td").nth(0).inner_text() == PCB
    assert rows.nth(0).locator("td").nth(2).inner_text() == str(CURRENT[PCB] + PCB_EXTRA)


def test_a_preset_changes_the_window(tab: Tab) -> None:
    page = tab.open("/overview")
    page.click(".range a.preset:text-is('1h')")
    tab.arrive("/overview?range=1h")
    # Only the two inferences of the tag-like model and the two with images are that recent.
    assert kpi(page, "inferences") == str(CURRENT[XSS] + 2)
    assert page.get_attribute(".range a.preset:text-is('1h')", "aria-current") == "true"


def test_a_custom_range_shows_the_week_before(tab: Tab) -> None:
    page = tab.open("/overview")
    page.click(".range summary")
    now = page.evaluate("Date.now()")
    day = 86400 * 1000
    # The inputs take local time, as a person types it.
    local = "(e, t) => { const d = new Date(t); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());" \
            " e.value = d.toISOString().slice(0, 16); }"
    for field, days_back in (("#range-from", 14), ("#range-to", 7)):
        page.eval_on_selector(field, local, now - days_back * day)
    page.click("#range-form button[type=submit]")
    tab.arrive("from=")
    assert kpi(page, "inferences") == str(PREVIOUS)
    assert page.get_attribute(".range summary", "aria-current") == "true"


def test_the_models_table_links_to_the_model_page(tab: Tab) -> None:
    page = tab.open("/overview")
    page.click(f"#models-table a:text-is('{SORTER}')")
    tab.arrive("/models/sorter%2F2")
    tab.shot("model")
    assert page.inner_text("#model-name") == SORTER
    assert kpi(page, "inferences") == str(CURRENT[SORTER])
    assert page.locator("#recent-table tbody tr").count() == 15
    assert page.locator("#chart-class-series .main-svg").count() > 0
    assert page.locator("#chart-confidence-class .main-svg").count() > 0


def test_group_by_a_metadata_field_gives_a_series_and_a_row_per_value(tab: Tab) -> None:
    page = tab.open("/overview")
    page.select_option("#group-by", "meta.camera_location")
    page.click("#group-form button[type=submit]")
    tab.arrive("/overview?group_by=meta.camera_location")
    tab.shot("overview-grouped")
    rows = {
        row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
        for row in page.locator("#group-table tbody tr").all()
    }
    assert rows == {"canada": str(CANADA), "mexico": str(MEXICO), XSS: str(CURRENT[XSS]),
                    "(not set)": str(TOTAL - CANADA - MEXICO - CURRENT[XSS])}
    legend = page.locator("#chart-volume .legendtext").all_text_contents()
    assert {"canada", "mexico", XSS} <= set(legend)
    # A value in the table opens the inferences filtered by it.
    page.click("#group-table a:text-is('mexico')")
    tab.arrive("meta.camera_location=mexico")
    assert page.locator("#inference-table tbody tr").count() == MEXICO


def test_the_model_page_groups_by_a_field_too(tab: Tab) -> None:
    page = tab.open("/models/pcb-defects%2F7?group_by=meta.line")
    values = page.locator("#group-table tbody tr td:first-child").all_inner_texts()
    assert values == ["(not set)", "3"]


def test_the_overview_reads_on_a_wall_monitor(profile: BrowserContext, server: Server, signed_in_state: dict[str, Any]
                                             ) -> None:
    with watched(profile, server.url, signed_in_state, 2560, 1440) as tab:
        tab.open("/overview")
        tab.shot("overview-wall-monitor")
        # Text grows with the screen: the headline figures are bigger than on a laptop.
        size = tab.page.eval_on_selector(".kpi .value", "e => parseFloat(getComputedStyle(e).fontSize)")
        assert size > 40


def test_the_page_is_keyboard_reachable(tab: Tab) -> None:
    page = tab.open("/overview")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('main') !== null")
    assert focused, "after skipping, the next stop is in the page's content"
    # Every interactive element has a visible focus style and can be tabbed to.
    page.focus("#group-by")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_a_preset_window_follows_the_clock(profile: BrowserContext, server: Server) -> None:
    """On a wall monitor the page stays current: a minute later it shows what arrived meanwhile."""
    with open_workspace(server, "wall") as ws, watched(profile, server.url) as tab:
        ingest(ws, [item("first")])
        tab.page.clock.install()
        tab.sign_in(ws.key)
        page = tab.open("/overview?range=1h")
        assert kpi(page, "inferences") == "1"
        ingest(ws, [item("second")])
        page.clock.fast_forward(61_000)
        page.wait_for_selector(".kpi[data-key=inferences] [data-role=value]:text-is('2')")


def test_every_asset_comes_from_inferwatch_itself(tab: Tab) -> None:
    """An air-gapped plant has no CDN: every request a page makes goes to this server."""
    requested: list[str] = []
    tab.page.on("request", lambda r: requested.append(r.url))
    tab.open("/overview?group_by=meta.camera_location")
    assert any(url.endswith("/static/vendor/plotly.min.js") for url in requested)
    assert [url for url in requested if not url.startswith(tab.base + "/")] == []
    plotly = tab.page.request.get(tab.base + "/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly.ok and "max-age" in plotly.headers["cache-control"]
