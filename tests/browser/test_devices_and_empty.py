"""The devices page, and the empty states that tell a new workspace how to send its first inference."""

from __future__ import annotations

from playwright.sync_api import BrowserContext

from tests.browser.conftest import CURRENT, XSS, Tab, watched
from tests.conftest import ingest, item, open_workspace
from tests.server import Server


def test_devices_show_status_last_seen_volume_and_a_sparkline(tab: Tab) -> None:
    page = tab.open("/devices")
    tab.shot("devices")
    rows = {r.locator("td").nth(1).inner_text(): r for r in page.locator("#devices-table tbody tr").all()}
    assert set(rows) == {"cam-0", "cam-1", "cam-2", "sorter-box", XSS}
    sorter = rows["sorter-box"]
    assert sorter.locator("td").nth(6).inner_text() == str(CURRENT["sorter/2"])
    assert sorter.locator("svg.spark polyline").count() == 1
    # Last seen is when inferwatch last heard from a device (the seed was just sent): all online.
    assert {r.locator("td").nth(0).inner_text() for r in rows.values()} == {"online"}
    assert page.inner_text("#device-count") == "5 online of 5"
    page.click("#devices-table a:text-is('sorter-box')")
    tab.arrive("device_id=sorter-box")
    assert page.locator("#inference-table tbody tr").count() == CURRENT["sorter/2"]


def test_a_new_workspace_is_told_how_to_send_its_first_inference(profile: BrowserContext, server: Server) -> None:
    with open_workspace(server, "newcomer") as ws, watched(profile, server.url) as tab:
        tab.sign_in(ws.key)
        page = tab.open("/overview")
        tab.shot("overview-empty")
        assert page.is_visible("#empty")
        text = page.inner_text("#empty")
        assert f"curl -s {server.url}/api/v1/{ws.slug}/inferences" in text
        assert f'URL = "{server.url}"' in text
        assert "import requests" in text
        for path in ("/inferences", "/devices"):
            assert tab.open(path).is_visible("#empty"), path
        # Once something arrives the empty state is gone.
        ingest(ws, [item("first")])
        page = tab.open("/overview")
        assert not page.is_visible("#empty")
        assert page.inner_text(".kpi[data-key=inferences] [data-role=value]") == "1"


def test_the_first_workspaces_empty_state_carries_its_key(profile: BrowserContext, server: Server) -> None:
    """The `default` workspace of `make run`: its key is known, so the examples are ready to paste."""
    with watched(profile, server.url) as tab:
        tab.page.goto(f"{server.url}/signin?api_key={server.initial_key}")
        tab.arrive("/overview")
        if tab.page.is_visible("#empty"):
            assert f'KEY = "{server.initial_key}"' in tab.page.inner_text("#empty")
        else:  # another test already sent something here: the key is still in the page's examples
            assert server.initial_key in (tab.page.text_content("#empty") or "")
