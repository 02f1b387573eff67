"""A shared Chromium, a workspace seeded through the public API, and pages that fail their test
on any console error, uncaught exception or dialog.

Seeding goes through the same routes a deployment uses (native ingest, Roboflow metadata, image
upload). Timestamps are relative to now, so the overview's default 7-day window and the previous
period hold known counts.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, sync_playwright

from tests.conftest import Workspace, attach, ingest, open_workspace
from tests.server import TLS, Server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
XSS = "<img src=x onerror=alert(1)>"
DAY = 86400.0

# The seeded workspace, as the tests expect to see it over the last 7 days.
PCB, SORTER = "pcb-defects/7", "sorter/2"
CURRENT = {PCB: 40, SORTER: 20, XSS: 2}
PCB_EXTRA = 4  # the two inferences with images, and a batched request of two images
TOTAL = sum(CURRENT.values()) + PCB_EXTRA
BATCH_ID = "batched"
PREVIOUS = 10  # PCB inferences 8 to 12 days ago: the previous equal period of the 7-day window
CANADA, MEXICO = 20, 20  # camera_location of PCB's current inferences; XSS's two carry the XSS value
IMAGE_ID = "with-image"
IMAGE_SIZE = (320, 240)
IMAGE_GREY = (128, 128, 128)
IMAGE_BOXES: list[dict[str, Any]] = [
    {"x": 80.0, "y": 60.0, "width": 100.0, "height": 60.0, "class": "scratch", "confidence": 0.91},
    {"x": 240.0, "y": 170.0, "width": 80.0, "height": 80.0, "class": "dent", "confidence": 0.55},
]

# A segmentation and a keypoint prediction, drawn over a second image (image coordinates).
SHAPES_ID = "with-shapes"
SHAPES_SIZE = (200, 100)
SHAPES: list[dict[str, Any]] = [
    {"x": 50.0, "y": 50.0, "width": 60.0, "height": 60.0, "class": "blob", "confidence": 0.8,
     "points": [{"x": 20.0, "y": 20.0}, {"x": 80.0, "y": 20.0}, {"x": 80.0, "y": 80.0}, {"x": 20.0, "y": 80.0}]},
    {"x": 150.0, "y": 50.0, "width": 40.0, "height": 60.0, "class": "person", "confidence": 0.7,
     "keypoints": [{"x": 150.0, "y": 35.0, "confidence": 0.9, "class_name": "nose", "class_id": 0},
                   {"x": 150.0, "y": 70.0, "confidence": 0.9, "class_name": "hip", "class_id": 1}]},
]


def _result(cls: str, confidence: float, time_s: float) -> dict[str, Any]:
    return {"time": time_s, "image": {"width": 640, "height": 480},
            "predictions": [{"x": 100.0, "y": 100.0, "width": 50.0, "height": 40.0, "class": cls,
                             "confidence": confidence}]}


def seed(ws: Workspace, server: Server) -> None:
    now = time.time()
    items: list[dict[str, Any]] = []
    for i in range(CURRENT[PCB]):
        items.append({"model_id": PCB, "inference_id": f"pcb-{i:03d}", "device_id": f"cam-{i % 3}",
                      "tags": ["lineA"], "timestamp": now - 3600 - i * 3 * 3600,
                      "result": _result("scratch" if i % 2 else "dent", 0.5 + i / 100, 0.02)})
    for i in range(CURRENT[SORTER]):
        items.append({"model_id": SORTER, "inference_id": f"sort-{i:03d}", "device_id": "sorter-box",
                      "timestamp": now - 7200 - i * 5 * 3600,
                      "result": {"time": 0.04, "predictions": [{"class": "ok", "confidence": 0.8}],
                                 "top": "ok", "confidence": 0.8}})
    for i in range(CURRENT[XSS]):
        items.append({"model_id": XSS, "inference_id": f"xss-{i}", "device_id": XSS, "tags": [XSS],
                      "timestamp": now - 1800 - i * 60, "result": _result(XSS, 0.7, 0.03)})
    for i in range(PREVIOUS):
        items.append({"model_id": PCB, "inference_id": f"old-{i:03d}", "device_id": "cam-0",
                      "timestamp": now - 8 * DAY - i * 3600, "result": _result("dent", 0.6, 0.02)})
    items.append({"model_id": PCB, "inference_id": IMAGE_ID, "device_id": "cam-0", "timestamp": now - 600,
                  "result": {"time": 0.02, "image": {"width": IMAGE_SIZE[0], "height": IMAGE_SIZE[1]},
                             "predictions": IMAGE_BOXES}})
    items.append({"model_id": PCB, "inference_id": SHAPES_ID, "device_id": "cam-0", "timestamp": now - 900,
                  "result": {"time": 0.02, "image": {"width": SHAPES_SIZE[0], "height": SHAPES_SIZE[1]},
                             "predictions": SHAPES}})
    for index in range(2):
        items.append({"model_id": PCB, "inference_id": BATCH_ID, "image_index": index, "device_id": "cam-0",
                      "timestamp": now - 2 * DAY, "result": _result("dent", 0.6 + index / 10, 0.02)})
    ingest(ws, items)
    attach(ws, [
        {"inference_ids": [f"pcb-{i:03d}" for i in range(CANADA)], "field_name": "camera_location",
         "field_value": "canada"},
        {"inference_ids": [f"pcb-{i:03d}" for i in range(CANADA, CANADA + MEXICO)], "field_name": "camera_location",
         "field_value": "mexico"},
        {"inference_ids": [f"xss-{i}" for i in range(CURRENT[XSS])], "field_name": "camera_location",
         "field_value": XSS},
        {"inference_ids": [f"pcb-{i:03d}" for i in range(0, CURRENT[PCB], 4)], "field_name": "line",
         "field_value": "3"},
        {"inference_ids": ["xss-0"], "field_name": XSS, "field_value": "field named like a tag"},
    ])
    for inference_id, size in ((IMAGE_ID, IMAGE_SIZE), (SHAPES_ID, SHAPES_SIZE)):
        picture = io.BytesIO()
        Image.new("RGB", size, IMAGE_GREY).save(picture, "PNG")
        reply = httpx.post(f"{server.url}/dataset/parts/upload",
                           params={"api_key": ws.key, "inference_id": inference_id},
                           files={"file": ("frame.png", picture.getvalue(), "image/png")}, timeout=30, verify=TLS)
        assert reply.status_code == 200, reply.text


@pytest.fixture(scope="session")
def seeded(server: Server) -> Iterator[Workspace]:
    """The workspace every read-only browser test looks at."""
    with open_workspace(server, "dash") as ws:
        seed(ws, server)
        yield ws


@dataclass
class Tab:
    """A page that records what must never happen: console errors, uncaught errors, dialogs."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str, loaded: bool = True) -> Page:
        """Goes to a dashboard path and waits until its script says every figure is in."""
        self.page.goto(self.base + path)
        if loaded:
            self.page.wait_for_selector("body[data-loaded=yes]", state="attached")
        return self.page

    def arrive(self, fragment: str, loaded: bool = True) -> Page:
        """Waits for a navigation to a URL holding `fragment`, then for its figures."""
        self.page.wait_for_url(lambda url: fragment in url)
        if loaded:
            self.page.wait_for_selector("body[data-loaded=yes]", state="attached")
        return self.page

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def sign_in(self, key: str) -> None:
        self.page.goto(self.base + "/signin")
        self.page.fill("#api_key", key)
        self.page.click("button[type=submit]")
        self.arrive("/overview")


def _watch(page: Page, base: str) -> Tab:
    tab = Tab(page, base)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.problems.append(f"console: {message.text} at {page.url}")

    def dialog(d: Dialog) -> None:
        tab.dialogs.append(d.message)
        d.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda exc: tab.problems.append(f"uncaught: {exc} at {page.url}"))
    page.on("dialog", dialog)
    return tab


def _check(tab: Tab) -> None:
    assert tab.problems == [], "the pages logged errors"
    assert tab.dialogs == [], "a dialog opened: some text ran as script"


@pytest.fixture(scope="session")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One Chromium profile on disk for every tab of the session, emptied of cookies between
    tests (what a test sees of a profile is its cookies: the dashboard keeps nothing in the
    browser's storage). On disk, Chromium keeps the code it compiled from plotly.js's 4.8 MB, so
    a chart page costs its renderer about 0.5 s of CPU instead of 1.5-2.5 s in a throwaway one."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        yield context
        context.close()


@contextmanager
def watched(profile: BrowserContext, base: str, state: dict[str, Any] | None = None,
            width: int = 1440, height: int = 900) -> Iterator[Tab]:
    """A tab as a fresh profile would open it, signed in if `state` holds a session's cookies; on
    leaving, its pages close and nothing bad may have happened."""
    profile.clear_cookies()
    if state:
        profile.add_cookies(state["cookies"])
    page = profile.new_page()
    page.set_viewport_size({"width": width, "height": height})
    tab = _watch(page, base)
    try:
        yield tab
    finally:
        for opened in profile.pages:  # links a test followed into new tabs too
            opened.close()
        profile.clear_cookies()
    _check(tab)


@pytest.fixture(scope="session")
def signed_in_state(profile: BrowserContext, server: Server, seeded: Workspace) -> dict[str, Any]:
    """The cookies of a browser signed in to the seeded workspace (through the link `make run` prints)."""
    with watched(profile, server.url) as tab:
        # A page without charts: quicker.
        tab.page.goto(f"{server.url}/signin?api_key={seeded.key}&next=/devices")
        tab.page.wait_for_url(lambda url: "/devices" in url)
        state: dict[str, Any] = dict(profile.storage_state())
    return state


@pytest.fixture
def anon(profile: BrowserContext, server: Server) -> Iterator[Tab]:
    """A tab without a session."""
    with watched(profile, server.url) as tab:
        yield tab


@pytest.fixture
def tab(profile: BrowserContext, server: Server, signed_in_state: dict[str, Any]) -> Iterator[Tab]:
    """A tab signed in to the seeded workspace."""
    with watched(profile, server.url, signed_in_state) as tab:
        yield tab
