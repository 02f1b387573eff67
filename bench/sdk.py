"""SDK benchmark: what `Client.log` costs the caller's thread, per call.

Run from the repository root:

    .venv/bin/python bench/sdk.py [--calls 50000] [--sv-calls 50000] [--frames 100]

Starts the real server on a fresh data dir, then times each of `--calls` calls of `client.log`
with what `InferenceHTTPClient.infer` returns for a detector (3 predictions), one call at a time
as an inference loop makes them, while the SDK's thread sends in the background. Prints the median
and p99 per call, the same with inferwatch stopped (every batch then goes to the spool), and
checks that every logged inference arrived. Target: a median under 20 µs.

With `supervision` installed (the test extra), the same for `client.log(detections)` with a
`supervision.Detections` of 3 boxes with class names (`--sv-calls`; target: a median under 50 µs),
the result being made in the SDK's thread. Then the image figures (`vision.quality`: brightness,
contrast, Laplacian sharpness, colour cast, clipped share) and the JPEG encoding that `image=`
costs the SDK's thread, per 1920x1080 frame (`--frames`), measured on their own.

Then, in the same run, the latency `inferwatch proxy` adds to an inference request against calling
the inference server directly (bench/sdk_proxy.py; `--proxy-requests 0` skips it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
from tests.server import Server  # noqa: E402

import inferwatch  # noqa: E402
from sdk_proxy import ProxyFigures, proxy_latency  # noqa: E402  (bench/ is the script's own folder)


def result(i: int) -> dict[str, Any]:
    return {
        "time": 0.021,
        "image": {"width": 1280, "height": 720},
        "predictions": [
            {"x": 100.5 + j, "y": 220.0, "width": 40.0, "height": 80.0, "confidence": 0.5 + j / 10,
             "class": ("person", "car", "truck")[j], "class_id": j, "detection_id": f"d-{i}-{j}"}
            for j in range(3)
        ],
    }


def time_calls(client: inferwatch.Client, calls: int, model_id: str) -> list[float]:
    """Per-call microseconds; the results are built beforehand so only `log` is timed."""
    results = [result(i) for i in range(calls)]
    took: list[float] = []
    clock = time.perf_counter_ns
    for r in results:
        start = clock()
        client.log(r, model_id=model_id, device_id="line-1-cam-2")
        took.append((clock() - start) / 1000)
    return took


def time_detections(client: inferwatch.Client, calls: int, model_id: str) -> list[float]:
    """Per-call microseconds of `log(detections)`; the Detections are built beforehand."""
    import numpy as np
    import supervision as sv

    made = [sv.Detections(xyxy=np.array([[100.0 + j, 220.0, 140.0 + j, 300.0] for j in range(3)]),
                          confidence=np.array([0.5, 0.6, 0.7]), class_id=np.array([0, 1, 2]),
                          data={"class_name": np.array(["person", "car", "truck"])}) for _ in range(calls)]
    took: list[float] = []
    clock = time.perf_counter_ns
    for detections in made:
        start = clock()
        client.log(detections, model_id=model_id, device_id="line-1-cam-2")
        took.append((clock() - start) / 1000)
    return took


def time_figures(frames: int) -> tuple[list[float], list[float]]:
    """Milliseconds per 1080p frame of the figures and of the JPEG encoding, one after the other."""
    import numpy as np

    from inferwatch.sdk import vision

    rng = np.random.default_rng(0)
    # A scene-like frame: smooth gradients with some texture (JPEG time depends on content).
    y, x = np.mgrid[0:1080, 0:1920]
    base = np.stack([(x / 1920 * 200), (y / 1080 * 180), ((x + y) / 3000 * 160)], axis=-1)
    frame = np.clip(base + rng.normal(0, 12, size=base.shape), 0, 255).astype(np.uint8)
    figures, jpeg = [], []
    for _ in range(frames):
        start = time.perf_counter()
        vision.quality(frame)
        figures.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        vision.encode_jpeg(frame)
        jpeg.append((time.perf_counter() - start) * 1000)
    return figures, jpeg


def describe_ms(took: list[float]) -> str:
    ordered = sorted(took)
    return f"median {statistics.median(ordered):6.1f} ms, p99 {ordered[int(len(ordered) * 0.99)]:6.1f} ms"


def describe(took: list[float]) -> str:
    ordered = sorted(took)
    return (f"median {statistics.median(ordered):6.1f} µs, p99 {ordered[int(len(ordered) * 0.99)]:6.1f} µs,"
            f" mean {statistics.fmean(ordered):6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--proxy-requests", type=int, default=2000)
    parser.add_argument("--sv-calls", type=int, default=50_000)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    try:
        import supervision  # noqa: F401
    except ImportError:
        print("supervision is not installed (pip install -e '.[test]'): log(detections) is not measured")
        args.sv_calls = 0

    workdir = Path(tempfile.mkdtemp(prefix="inferwatch-bench-sdk-"))
    server = Server(workdir / "data").start()
    try:
        key = server.initial_key
        with inferwatch.Client(server.url, key, spool_dir=workdir / "spool") as client:
            up = time_calls(client, args.calls, "bench/up")
            assert client.flush(120), "the SDK did not deliver everything"
            counters = client.counters
            sent_plain = counters.sent
            detections = time_detections(client, args.sv_calls, "bench/sv") if args.sv_calls else []
            assert client.flush(120), "the SDK did not deliver everything"
        arrived = httpx.get(f"{server.url}/api/v1/default/stats", params={"from": "2000-01-01"},
                            headers={"Authorization": f"Bearer {key}"}).json()["totals"]["inferences"]
        # After the count above: the proxy's inferences land in the same workspace.
        proxy: ProxyFigures | None = None
        if args.proxy_requests:
            proxy = proxy_latency(server, key, "default", args.proxy_requests, workdir)

        server.stop()
        with inferwatch.Client(server.url, key, workspace="default", spool_dir=workdir / "spool-down") as down_client:
            down = time_calls(down_client, args.calls, "bench/down")
            down_client.close(timeout=0)
            spilled = down_client.counters.spilled
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures, jpeg = time_figures(args.frames) if args.frames else ([], [])

    print("```")
    print(f"inferwatch SDK benchmark: {args.calls:,} calls of client.log (3 detections each), one thread")
    print(f"  inferwatch up      {describe(up)}; delivered {sent_plain:,}")
    print(f"  inferwatch down    {describe(down)}; spooled {spilled:,}")
    if detections:
        print(f"client.log(supervision.Detections), 3 boxes with class names, {args.sv_calls:,} calls")
        print(f"  inferwatch up      {describe(detections)}; delivered {counters.sent - sent_plain:,}")
    print(f"  in the store: {arrived:,} of {counters.sent:,} delivered")
    if figures:
        print(f"image= per 1920x1080 frame, in the SDK's thread, {args.frames} frames")
        print(f"  figures (vision.quality)  {describe_ms(figures)}")
        print(f"  JPEG encoding (Pillow)    {describe_ms(jpeg)}")
    if proxy is not None:
        print("\n".join(proxy.lines()))
    print("```")


if __name__ == "__main__":
    main()
