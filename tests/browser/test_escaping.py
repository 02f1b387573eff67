"""Everything a user sent is shown as text: a model id, device id, tag, class, metadata field and
value of `<img src=x onerror=alert(1)>` appear literally on every page, and no script runs."""

from __future__ import annotations

from urllib.parse import quote

from tests.browser.conftest import XSS, Tab


def injected(tab: Tab) -> int:
    """Elements that would exist had some text been parsed as markup."""
    return int(tab.page.evaluate("document.querySelectorAll('img[src=x], img[onerror]').length"))


def test_text_that_looks_like_markup_stays_text_on_every_page(tab: Tab) -> None:
    pages = {
        "overview": "/overview?group_by=meta.camera_location",
        "overview-device-groups": "/overview?group_by=device_id",
        "model-xss": "/models/" + quote(XSS, safe=""),
        "inferences-xss": "/inferences?" + f"meta.camera_location={quote(XSS)}",
        "inference-xss": "/inferences/xss-0",
        "devices-xss": "/devices",
    }
    for name, path in pages.items():
        page = tab.open(path)
        assert injected(tab) == 0, name
        assert XSS in page.inner_text("main"), f"{name} shows the text as typed"
        tab.shot(f"escaping-{name}")
    # The chart labels are text too (plotly reads a few tags in labels; ours are escaped).
    page = tab.open("/overview?group_by=meta.camera_location")
    assert XSS in page.locator("#chart-volume .legendtext").all_text_contents()
    assert XSS in page.locator("#chart-classes .ytick").all_text_contents()
    # The inference shows the tag-like model, device, tag, class, metadata field and value.
    page = tab.open("/inferences/xss-0")
    props = page.inner_text("#properties")
    assert props.count(XSS) >= 3  # model, device, tag
    assert page.locator("#metadata-table tbody td").all_inner_texts().count(XSS) == 2  # field name, value
    assert page.locator("#predictions-table tbody td:nth-child(2)").all_inner_texts() == [XSS]
    assert tab.dialogs == []


def test_a_filter_value_that_looks_like_markup_is_shown_as_typed(tab: Tab) -> None:
    page = tab.open(f"/inferences?tag={quote(XSS)}&meta.{quote(XSS)}={quote(XSS)}")
    assert injected(tab) == 0
    assert page.input_value("input[name=tag]") == XSS
    assert XSS in page.inner_text("#meta-chips")
    assert page.title() == "Inferences · inferwatch"
