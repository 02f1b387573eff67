"""The inferences page's metadata filter compares: a field, an operator (=, ≠, >, ≥, <, ≤) and a
value make the same term the API takes (`meta.temperature[gt]=150`), shown as a chip that reads
as typed; a number in the table filters by its value."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import BrowserContext

from tests.browser.conftest import Tab, watched
from tests.conftest import ingest, item, open_workspace
from tests.server import Server

# inference id -> temperature as sent (a number, a string that reads as one, a string that does not)
TEMPERATURES: dict[str, Any] = {"t-cold": -4.5, "t-warm": 120, "t-hot": 151.5, "t-hotter": "160", "t-odd": "n/a"}


def _ids(tab: Tab) -> set[str]:
    links = tab.page.locator("#inference-table tbody tr td:nth-child(1) a").evaluate_all(
        "as => as.map(a => decodeURIComponent(a.getAttribute('href').split('/').pop()))")
    return set(links)


def _add_term(tab: Tab, field: str, op: str, value: str) -> None:
    tab.page.fill("#meta-field", field)
    tab.page.select_option("#meta-op", label=op)
    tab.page.fill("#meta-value", value)
    tab.page.click("text=Apply filters")


def test_a_numeric_range_from_the_filter_box(profile: BrowserContext, server: Server) -> None:
    now = time.time()
    with open_workspace(server, "typed") as ws, watched(profile, server.url) as tab:
        ingest(ws, [item(i, metadata={"temperature": t, "line": "A" if n < 2 else "B"}, timestamp=now - 60 * (n + 1))
                    for n, (i, t) in enumerate(TEMPERATURES.items())])
        tab.sign_in(ws.key)
        page = tab.open("/inferences")
        assert page.inner_text("#match-count") == "5 match"

        _add_term(tab, "temperature", ">", "150")
        tab.arrive("meta.temperature%5Bgt%5D=150")
        assert _ids(tab) == {"t-hot", "t-hotter"}
        assert page.inner_text("#match-count") == "2 match"
        assert page.locator("#meta-chips .chip span").all_inner_texts() == ["temperature > 150"]

        # A second comparison of the same field narrows it to a range.
        _add_term(tab, "temperature", "≤", "155")
        tab.arrive("meta.temperature%5Blte%5D=155")
        tab.shot("inferences-numeric-range")
        assert _ids(tab) == {"t-hot"}
        assert page.locator("#meta-chips .chip span").all_inner_texts() == ["temperature > 150", "temperature ≤ 155"]

        # Removing the first chip leaves "at most 155": numbers only, the text "n/a" is none.
        page.locator("#meta-chips .chip").first.locator("button.remove").click()
        tab.arrive("columns=")
        assert _ids(tab) == {"t-cold", "t-warm", "t-hot"}

        # A number in the table filters by its value; the string "160" answers as the string it is.
        page = tab.open("/inferences")
        column = page.locator("#inference-table thead th").all_inner_texts().index("temperature") + 1
        values = page.locator(f"#inference-table tbody td:nth-child({column})").all_inner_texts()
        assert sorted(values) == sorted(["-4.5", "120", "151.5", "160", "n/a"])
        page.locator(f"#inference-table tbody td:nth-child({column}) a", has_text="151.5").click()
        tab.arrive("meta.temperature%5Beq%5D=151.5")
        assert _ids(tab) == {"t-hot"}

        # The overview shows the same term as a chip that reads as typed.
        page = tab.open("/overview?meta.temperature%5Bgte%5D=120")
        assert "meta.temperature ≥ 120" in page.locator("ul.chips").inner_text()
        assert page.inner_text(".kpi[data-key=inferences] [data-role=value]") == "3"

        # Grouped by line, with the temperature's figures: line A holds -4.5 and 120, line B
        # 151.5 and "160" (a string that reads as a number counts; "n/a" does not).
        offered = page.eval_on_selector_all("#numeric option", "os => os.map(o => o.value)")
        assert offered == ["", "meta.temperature"]
        page = tab.open("/overview")
        page.select_option("#group-by", "meta.line")
        page.select_option("#numeric", "meta.temperature")
        page.click("#group-form button[type=submit]")
        tab.arrive("numeric=meta.temperature")
        tab.shot("overview-numeric")
        heads = page.locator("#group-table thead th:visible").all_inner_texts()
        assert heads[-3:] == ["Avg temperature", "Min", "Max"]
        rows = {r[0]: r[-3:] for r in (row.locator("td").all_inner_texts()
                                       for row in page.locator("#group-table tbody tr").all())}
        assert rows == {"A": ["57.75", "-4.5", "120"], "B": ["155.75", "151.5", "160"]}
        assert page.is_visible("#chart-numeric .main-svg")
        assert page.inner_text("#numeric-title") == "Average temperature over time by line"
