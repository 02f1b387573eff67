"""`inferwatch demo`: realistic traffic for a running server, so a new dashboard has something to show.

Three factories (`camera_location` = canada, mexico, poland; tags name factory and line), two
lines each, four cameras a line: two run a PCB defect detector, one a packaging detector, one a
label classifier. First `--hours-back` hours of history go in as large gzipped batches, newest
hour first (fewer inferences at night, as a plant runs), then live traffic at `--rate`
inferences a second. About a third of the parts are inspected by a person a few seconds after the
camera saw them: their verdict arrives as metadata through the Roboflow-compatible metadata route
(`inspection=passed|failed`, `expected=<class>`), as a real inspection step would send it. One
camera's confidence drifts down over the last part of the history and stays low, the kind of
episode the dashboard exists to show.

Everything goes over HTTP through the public API, the same way a user's own devices would send
it, so the demo also shows what a client looks like.
"""

from __future__ import annotations

import gzip
import heapq
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

FACTORIES = ("canada", "mexico", "poland")
LINES = (1, 2)
DETECTORS: dict[str, tuple[str, ...]] = {
    "pcb-defects/7": ("scratch", "solder-bridge", "missing-component", "misalignment", "burn"),
    "packaging-qa/3": ("dent", "tear", "label-missing", "seal-open"),
}
CLASSIFIER = "label-check/2"
LABELS = ("ok", "smudged", "misprinted", "missing")
# Which model each camera of a line runs, by camera number.
CAMERA_MODELS = {1: "pcb-defects/7", 2: "pcb-defects/7", 3: "packaging-qa/3", 4: CLASSIFIER}
DRIFTING_DEVICE = "mexico-line2-cam1"
MAX_DRIFT = 0.4  # how far the drifting camera's confidence has fallen at the end of the episode
NO_DEFECT = "none"  # what an inspector expected when a detector rightly found nothing
BACKFILL_BATCH = 2000
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class Camera:
    device_id: str
    factory: str
    line: int
    model_id: str


CAMERAS = tuple(
    Camera(f"{factory}-line{line}-cam{cam}", factory, line, model)
    for factory in FACTORIES for line in LINES for cam, model in CAMERA_MODELS.items()
)


class DemoError(Exception):
    """The demo cannot go on (no server, a refused key, an answer it cannot use)."""


@dataclass(slots=True)
class Traffic:
    """Generates inferences and the inspection verdicts that follow some of them.

    `episode_start` and `episode_end` (unix seconds) bound the drift: before, the drifting
    camera is like the others; after, its confidence is MAX_DRIFT lower, and it is wrong more
    often, which the inspections show as failures.
    """

    episode_start: float
    episode_end: float
    rng: random.Random = field(default_factory=random.Random)

    def drift(self, ts: float) -> float:
        if ts <= self.episode_start:
            return 0.0
        span = max(1.0, self.episode_end - self.episode_start)
        return MAX_DRIFT * min(1.0, (ts - self.episode_start) / span)

    def inference(self, ts: float) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """One native ingest item at `ts`, and its inspection metadata (empty when not inspected)."""
        rng = self.rng
        camera = rng.choice(CAMERAS)
        drift = self.drift(ts) if camera.device_id == DRIFTING_DEVICE else 0.0
        inference_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if camera.model_id == CLASSIFIER:
            truth = rng.choices(LABELS, weights=(80, 10, 6, 4))[0]
            result, predicted = self._classification(inference_id, truth, drift)
        else:
            classes = DETECTORS[camera.model_id]
            truth = NO_DEFECT if rng.random() < 0.15 else rng.choices(classes, weights=range(len(classes), 0, -1))[0]
            result, predicted = self._detection(inference_id, classes, truth, drift)
        item = {
            "model_id": camera.model_id,
            "device_id": camera.device_id,
            "timestamp": round(ts, 6),
            "tags": [camera.factory, f"line{camera.line}"],
            "metadata": {"camera_location": camera.factory},
            "result": result,
        }
        inspection: list[tuple[str, str]] = []
        if rng.random() < 0.3:
            verdict = "passed" if predicted == truth else "failed"
            inspection = [("inspection", verdict), ("expected", truth)]
        return item, inspection

    def _confidence(self, drift: float) -> float:
        return round(max(0.05, min(0.999, self.rng.betavariate(9, 1.6) - drift)), 4)

    def _classification(self, inference_id: str, truth: str, drift: float) -> tuple[dict[str, Any], str]:
        rng = self.rng
        right = rng.random() < 0.95 - drift
        top = truth if right else rng.choice([c for c in LABELS if c != truth])
        confidence = self._confidence(drift)
        rest = 1.0 - confidence
        scores = [(confidence if name == top else round(rest / (len(LABELS) - 1), 4), class_id, name)
                  for class_id, name in enumerate(LABELS)]
        predictions = [{"class": name, "class_id": class_id, "confidence": share}
                       for share, class_id, name in sorted(scores, reverse=True)]
        result = {
            "inference_id": inference_id,
            "time": round(rng.uniform(0.006, 0.014), 4),
            "image": {"width": 224, "height": 224},
            "predictions": predictions,
            "top": top,
            "confidence": confidence,
        }
        return result, top

    def _detection(self, inference_id: str, classes: tuple[str, ...], truth: str, drift: float
                   ) -> tuple[dict[str, Any], str]:
        """A detector's answer; the predicted class is its most confident box's (NO_DEFECT if none)."""
        rng = self.rng
        right = rng.random() < 0.93 - drift
        # A missed defect is no box for it; a false alarm on a good part is one box.
        found = truth != NO_DEFECT and right
        count = (0 if right else 1) if truth == NO_DEFECT else int(found) + min(4, int(rng.expovariate(1.2)))
        predictions: list[dict[str, Any]] = []
        confidences: list[float] = []
        for k in range(count):
            name = truth if k == 0 and found else rng.choice([c for c in classes if c != truth])
            confidence = self._confidence(drift) if k == 0 else round(rng.uniform(0.4, 0.7), 4)
            confidences.append(confidence)
            width, height = rng.uniform(18, 240), rng.uniform(18, 200)
            predictions.append({
                "x": round(rng.uniform(width / 2, 1280 - width / 2), 1),
                "y": round(rng.uniform(height / 2, 720 - height / 2), 1),
                "width": round(width, 1), "height": round(height, 1),
                "confidence": confidence,
                "class": name, "class_id": classes.index(name),
                "detection_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            })
        predicted = str(predictions[confidences.index(max(confidences))]["class"]) if predictions else NO_DEFECT
        result = {
            "inference_id": inference_id,
            "time": round(rng.lognormvariate(math.log(0.028), 0.25), 4),
            "image": {"width": 1280, "height": 720},
            "predictions": predictions,
        }
        return result, predicted


def shift_factor(ts: float) -> float:
    """How busy the plants are at a UTC hour: two day shifts at full speed, a lighter night."""
    hour = (ts % 86400) / 3600
    return 1.0 if 6 <= hour < 22 else 0.35


def history(traffic: Traffic, start: float, end: float, rate: float) -> Iterator[float]:
    """Timestamps of the backfill: about `rate` a second over [start, end), fewer at night."""
    rng = traffic.rng
    minute = start
    while minute < end:
        n = rate * 60 * shift_factor(minute)
        count = int(n) + (1 if rng.random() < n - int(n) else 0)
        stamps = sorted(rng.uniform(minute, min(end, minute + 60)) for _ in range(count))
        yield from stamps
        minute += 60


class Client:
    """The server's API for the demo: gzipped JSON posts that wait out a busy server (503, 429)."""

    def __init__(self, url: str, api_key: str, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {api_key}"})
        self.sleep = sleep
        self.waited_s = 0.0

    def close(self) -> None:
        self.http.close()

    def workspace(self) -> str:
        """The key's workspace, asked the way Roboflow's clients ask (`GET /?api_key=`)."""
        reply = self._send("GET", "/")
        slug = reply.json().get("workspace") if reply.headers.get("content-type", "").startswith(
            "application/json") else None
        if not isinstance(slug, str):
            raise DemoError(f"{self.url} did not name the key's workspace: is it an inferwatch server?")
        return slug

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = gzip.compress(_encode(body), compresslevel=1)
        reply = self._send("POST", path, data)
        answer: dict[str, Any] = reply.json()
        return answer

    def _send(self, method: str, path: str, data: bytes | None = None, tries: int = 20) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"} if data is not None else {}
        for attempt in range(tries):
            try:
                reply = self.http.request(method, path, content=data, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= 2:
                    raise DemoError(f"cannot reach {self.url}: {exc}") from None
                self.sleep(1.0)
                continue
            if reply.status_code in (429, 503):
                # The server's queue is full (503) or the key is over its rate (429): the answer
                # says when to come back, and a polite client does.
                wait = _retry_after(reply.headers.get("retry-after"))
                self.waited_s += wait
                self.sleep(wait)
                continue
            if reply.status_code in (401, 403):
                raise DemoError(f"the server refused the API key ({reply.status_code}): give --api-key")
            if reply.status_code != 200:
                raise DemoError(f"{method} {path} answered {reply.status_code}: {reply.text[:500]}")
            return reply
        raise DemoError(f"{method} {path}: the server stayed busy after {tries} tries")


def _retry_after(value: str | None) -> float:
    try:
        return min(30.0, max(0.1, float(value))) if value else 1.0
    except ValueError:
        return 1.0


@dataclass(slots=True)
class Counts:
    inferences: int = 0
    inspections: int = 0


class Demo:
    """Sends the backfill and the live traffic for one workspace, and the inspections after them."""

    def __init__(self, client: Client, workspace: str, traffic: Traffic,
                 say: Callable[[str], None] = print) -> None:
        self.client = client
        self.workspace = workspace
        self.traffic = traffic
        self.say = say
        self.counts = Counts()
        # (due time, sequence, inference id, metadata pairs): inspections not yet sent.
        self._pending: list[tuple[float, int, str, list[tuple[str, str]]]] = []
        self._seq = 0

    def send(self, items: list[dict[str, Any]]) -> list[str]:
        if not items:
            return []
        answer = self.client.post(f"/api/v1/{self.workspace}/inferences", {"inferences": items})
        ids: list[str] = answer["inference_ids"]
        self.counts.inferences += len(ids)
        return ids

    def inspect(self, verdicts: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """Sends inspection metadata, one entry per (field, value) naming all its inferences."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for inference_id, pairs in verdicts:
            for name, value in pairs:
                grouped.setdefault((name, value), []).append(inference_id)
        if not grouped:
            return
        data = [{"inference_ids": ids, "field_name": name, "field_value": value}
                for (name, value), ids in grouped.items()]
        self.client.post(f"/{self.workspace}/inference-stats/metadata", {"data": data})
        self.counts.inspections += len(verdicts)

    def backfill(self, start: float, end: float, rate: float) -> None:
        """Sends the history an hour at a time, the newest hour first: the dashboard's recent
        figures are there within seconds while older hours keep arriving (a day of history takes
        a minute or two on a busy machine, most of it the server storing metadata)."""
        hour_end = end
        while hour_end > start:
            hour_start = max(start, hour_end - 3600)
            items: list[dict[str, Any]] = []
            verdicts: list[list[tuple[str, str]]] = []
            for ts in history(self.traffic, hour_start, hour_end, rate):
                item, inspection = self.traffic.inference(ts)
                items.append(item)
                verdicts.append(inspection)
                if len(items) >= BACKFILL_BATCH:
                    self._send_with_inspections(items, verdicts)
                    items, verdicts = [], []
            self._send_with_inspections(items, verdicts)
            hour_end = hour_start

    def _send_with_inspections(self, items: list[dict[str, Any]], verdicts: list[list[tuple[str, str]]]) -> None:
        if not items:
            return
        ids = self.send(items)
        self.inspect([(i, v) for i, v in zip(ids, verdicts, strict=True) if v])

    def live(self, rate: float, duration: float | None, count: int | None,
             clock: Callable[[], float] = time.time, report_every: float = 10.0) -> None:
        """Sends about `rate` inferences a second, stamped now, until `duration` seconds or `count`
        inferences (forever if neither); each inspection follows its inference 2 to 8 s later."""
        started = clock()
        sent = 0
        owed = 0.0
        last = started
        last_report = started
        while True:
            now = clock()
            if (duration is not None and now - started >= duration) or (count is not None and sent >= count):
                break
            owed += (now - last) * rate
            last = now
            n = int(owed)
            if count is not None:
                n = min(n, count - sent)
            if n:
                owed -= n
                self._live_batch(now, n)
                sent += n
            self._flush(now)
            if now - last_report >= report_every:
                last_report = now
                self.say(f"  live: {self.counts.inferences:,} inferences and {self.counts.inspections:,}"
                         " inspections sent so far")
            self.client.sleep(max(0.0, min(0.25, 1.0 / rate if rate > 0 else 0.25)))
        self._flush(None)

    def _live_batch(self, now: float, n: int) -> None:
        pairs = [self.traffic.inference(now - 0.25 * k / n) for k in range(n)]
        ids = self.send([item for item, _ in pairs])
        for inference_id, (_, inspection) in zip(ids, pairs, strict=True):
            if inspection:
                self._seq += 1
                due = now + self.traffic.rng.uniform(2.0, 8.0)
                heapq.heappush(self._pending, (due, self._seq, inference_id, inspection))

    def _flush(self, now: float | None) -> None:
        """Sends the inspections due by `now` (all of them when None: the demo is stopping)."""
        due = []
        while self._pending and (now is None or self._pending[0][0] <= now):
            _, _, inference_id, inspection = heapq.heappop(self._pending)
            due.append((inference_id, inspection))
        self.inspect(due)


def run(url: str, api_key: str, *, rate: float, hours_back: float, duration: float | None = None,
        count: int | None = None, seed: int | None = None, say: Callable[[str], None] = print) -> Counts:
    """Fills the server at `url`: backfill first, then live traffic until the bound (or Ctrl-C)."""
    client = Client(url, api_key)
    try:
        workspace = client.workspace()
        now = time.time()
        back = hours_back * 3600
        # The drift starts in the last third of the history (at least 10 minutes before now) and
        # reaches its depth at the end of it: on the dashboard it is a slope ending in a low plateau.
        episode = max(600.0, back / 3)
        traffic = Traffic(episode_start=now - episode, episode_end=now, rng=random.Random(seed))
        demo = Demo(client, workspace, traffic, say)
        say(f"demo traffic for workspace {workspace!r} at {client.url}: {len(FACTORIES)} factories,"
            f" {len(CAMERAS)} cameras, models {', '.join([*DETECTORS, CLASSIFIER])}")
        say(f"  the confidence of camera {DRIFTING_DEVICE} drifts down from"
            f" {time.strftime('%H:%M UTC', time.gmtime(now - episode))}")
        if back > 0:
            began = time.monotonic()
            demo.backfill(now - back, now, rate)
            say(f"  backfill: {demo.counts.inferences:,} inferences over the last {hours_back:g} h and"
                f" {demo.counts.inspections:,} inspections, in {time.monotonic() - began:.1f} s")
        if duration is None and count is None:
            say(f"  live: {rate:g} inferences/s; open {client.url}/ and stop with Ctrl-C")
        try:
            demo.live(rate, duration, count)
        except KeyboardInterrupt:
            demo._flush(None)
        say(f"  done: {demo.counts.inferences:,} inferences and {demo.counts.inspections:,} inspections sent"
            + (f"; waited {client.waited_s:.1f} s for a busy server" if client.waited_s else ""))
        return demo.counts
    finally:
        client.close()
