"""Signing in and out: the session cookie's flags, the link `make run` prints, CSRF on forms, and
that a session never reaches another workspace's data nor writes through the API."""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext

from tests.browser.conftest import TOTAL, Tab, watched
from tests.conftest import Workspace, open_workspace
from tests.server import Server


def test_a_page_asks_to_sign_in_and_the_form_brings_the_user_back(anon: Tab, seeded: Workspace) -> None:
    page = anon.page
    page.goto(anon.base + "/inferences?meta.camera_location=canada")
    anon.arrive("/signin?next=", loaded=False)
    anon.shot("signin")
    page.fill("#api_key", "not-a-key-at-all")
    page.click("button[type=submit]")
    assert "That API key is not valid." in page.inner_text("[role=alert]")
    page.fill("#api_key", seeded.key)
    page.click("button[type=submit]")
    anon.arrive("/inferences?meta.camera_location=canada")
    assert page.inner_text("header .ws") == seeded.slug


def test_the_session_cookie_is_httponly_and_samesite_strict_and_never_the_key(tab: Tab, seeded: Workspace) -> None:
    tab.open("/devices")
    cookies = {c["name"]: c for c in tab.page.context.cookies()}
    session = cookies["iw_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert seeded.key not in session["value"]
    assert tab.page.evaluate("document.cookie") == ""  # page scripts see no cookie at all


def test_make_run_prints_a_link_that_signs_in(profile: BrowserContext, server: Server) -> None:
    banner = server.log_path.read_text()
    line = next(ln for ln in banner.splitlines() if "sign in:" in ln)
    link = line.split("sign in:", 1)[1].strip()
    assert link == f"{server.url}/signin?api_key={server.initial_key}"
    with watched(profile, server.url) as tab:
        tab.page.goto(link)
        tab.arrive("/overview")
        assert tab.page.inner_text("header .ws") == "default"


def test_sign_out_ends_the_session_and_needs_the_forms_token(tab: Tab, seeded: Workspace) -> None:
    page = tab.page
    forged = page.request.post(tab.base + "/signout", form={"csrf": "guessed-token-guessed-token"})
    assert forged.status == 403
    tab.open("/overview")
    page.click("text=Sign out")
    tab.arrive("/signin", loaded=False)
    assert "iw_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(tab.base + "/devices")
    tab.arrive("/signin?next=", loaded=False)
    assert page.request.get(f"{tab.base}/api/v1/{seeded.slug}/overview").status == 401


def test_a_signin_post_without_the_forms_token_is_refused(anon: Tab, seeded: Workspace) -> None:
    reply = anon.page.request.post(anon.base + "/signin", form={"api_key": seeded.key, "csrf": "x" * 32})
    assert reply.status == 403
    assert "iw_session" not in {c["name"] for c in anon.page.context.cookies()}


def test_the_cookie_reads_its_own_workspace_only_and_never_writes(tab: Tab, seeded: Workspace, server: Server) -> None:
    request = tab.page.request
    mine = request.get(f"{tab.base}/api/v1/{seeded.slug}/overview")
    assert mine.status == 200
    with open_workspace(server, "stranger") as other:
        assert request.get(f"{tab.base}/api/v1/{other.slug}/overview").status == 403
        assert request.get(f"{tab.base}/api/v1/{other.slug}/inferences").status == 403
    write = request.post(f"{tab.base}/api/v1/{seeded.slug}/inferences",
                         data={"inferences": [{"model_id": "m/1", "result": {"predictions": []}}]})
    assert write.status == 401
    week: dict[str, str | float | bool] = {"from": time.time() - 7 * 86400}
    assert request.get(f"{tab.base}/api/v1/{seeded.slug}/overview", params=week).json()["totals"]["inferences"] == TOTAL


def test_another_workspaces_key_sees_none_of_this_data(profile: BrowserContext, server: Server,
                                                       seeded: Workspace) -> None:
    with open_workspace(server, "neighbour") as other, watched(profile, server.url) as tab:
        tab.sign_in(other.key)
        page = tab.open("/overview")
        assert page.is_visible("#empty"), "to this workspace's key, nothing has arrived yet"
        assert not page.is_visible(".kpis")
        page = tab.open("/inferences")
        assert page.locator("#inference-table tbody tr").count() == 0
        page = tab.open("/inferences/pcb-000")
        assert page.is_visible("#missing")
        assert page.locator("#predictions-table tbody tr").count() == 0
        tab.problems.clear()  # the 404 of that last lookup is the point, not a page error


def test_pages_forbid_inline_scripts_framing_and_caching(tab: Tab) -> None:
    """Defence in depth behind the escaping: even a tag that slipped through could not run a script."""
    for path in ("/signin", "/overview", "/inferences", "/devices"):
        headers = tab.page.request.get(tab.base + path).headers
        policy = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
        assert policy["script-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"


def test_a_sign_in_link_on_another_site_asks_first(anon: Tab, seeded: Workspace, server: Server) -> None:
    """Login CSRF: another site's link must not sign this browser in to a workspace of its choosing."""
    page = anon.page
    page.goto(f"http://localhost:{server.port}/signin")  # another site than 127.0.0.1
    link = f"{server.url}/signin?api_key={seeded.key}"
    page.evaluate("href => { const a = document.createElement('a'); a.id = 'away'; a.href = href;"
                  " a.textContent = 'go'; document.body.append(a); }", link)
    page.click("#away")
    anon.arrive(f"{server.url}/signin?api_key=", loaded=False)
    assert seeded.slug in page.inner_text("#confirm")
    assert "iw_session" not in {c["name"] for c in page.context.cookies()}
    page.click(f"text=Sign in to {seeded.slug}")
    anon.arrive("/overview")
    assert page.inner_text("header .ws") == seeded.slug
