"""A small real HTTP server on a loopback port that answers like Roboflow's inference server
(ROBOFLOW-COMPAT.md §7), for the proxy's tests and benchmark: the routes `InferenceHTTPClient`
calls, with answers shaped as the real server's, computed from the request (image sizes are
read from the images sent).

- `GET /model/registry`, `POST /model/add`: the models the v1 client asks about first.
- `POST /infer/object_detection`, `/infer/classification` (v1, JSON; a list of images answers a
  list, one result per image sharing one inference id, as the real server does).
- `POST /{project}/{version}` (v0, the legacy route; body: the base64 image).
- `POST /{workspace}/workflows/{id}`, `/workflows/run`: `{"outputs": [...]}`, one per image,
  each with a model block's output carrying its `inference_id`.
- `GET /info`; `POST /echo` answers what it received (method, path, query, headers, body);
  `GET /stream?chunks=N` answers in N separately flushed chunks (chunked transfer encoding).

A model's task comes from MODELS, else its name: a project ending in `-cls` is a classifier. A
project starting with `anon-` answers without `inference_id` (a server that does not set one);
one starting with `bad-` answers a confidence of 1.7, which inferwatch refuses to store; one
starting with `cut-` (legacy route) closes the connection halfway through its answer.

Run alone with `python -m tests.clients.fake_upstream --port 9001`, or in-process with
`FakeUpstream().start()`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

MODELS = {"pcb-defects/7": "object-detection", "paint-color/3": "classification"}


def task_of(model_id: str) -> str:
    if model_id in MODELS:
        return MODELS[model_id]
    return "classification" if model_id.split("/")[0].endswith("-cls") else "object-detection"


def image_size(value: Any) -> dict[str, int | None]:
    """Width and height of a base64 image as the client sent it (None when it is not one)."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return {"width": None, "height": None}
    try:
        with Image.open(io.BytesIO(base64.b64decode(value.split(",")[-1]))) as img:
            return {"width": img.width, "height": img.height}
    except (binascii.Error, OSError, ValueError):
        return {"width": None, "height": None}


def detection(size: dict[str, int | None], inference_id: str | None) -> dict[str, Any]:
    w, h = size["width"] or 640, size["height"] or 480
    result: dict[str, Any] = {
        "time": 0.0213,
        "image": size,
        "predictions": [
            {"x": w / 2, "y": h / 2, "width": w / 4, "height": h / 5, "confidence": 0.91, "class": "scratch",
             "class_id": 0, "detection_id": str(uuid.uuid4())},
            {"x": w / 4, "y": h / 4, "width": w / 8, "height": h / 8, "confidence": 0.55, "class": "dent",
             "class_id": 1, "detection_id": str(uuid.uuid4())},
        ],
    }
    if inference_id is not None:
        result = {"inference_id": inference_id, **result}
    return result


def classification(size: dict[str, int | None], inference_id: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "time": 0.0081,
        "image": size,
        "predictions": [{"class": "red", "class_id": 0, "confidence": 0.8},
                        {"class": "blue", "class_id": 1, "confidence": 0.2}],
        "top": "red",
        "confidence": 0.8,
    }
    if inference_id is not None:
        result = {"inference_id": inference_id, **result}
    return result


def answer_for(model_id: str, size: dict[str, int | None], inference_id: str | None) -> dict[str, Any]:
    make = classification if task_of(model_id) == "classification" else detection
    answer = make(size, None if model_id.startswith("anon-") else inference_id)
    if model_id.startswith("bad-"):  # a result inferwatch refuses: a confidence above 1
        answer["predictions"][0]["confidence"] = 1.7
    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real server
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK (40 ms). uvicorn, which the real server runs on, sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _registry(self) -> dict[str, Any]:
        return {"models": [{"model_id": m, "task_type": task_of(m), "batch_size": 8, "input_height": 640,
                            "input_width": 640} for m in sorted(self.server.loaded)]}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.seen.append(("GET", url.path, url.query))
        if url.path == "/model/registry":
            self._json(self._registry())
        elif url.path == "/info":
            self._json({"name": "Roboflow Inference Server", "version": "1.8.3", "uuid": "fake-upstream"})
        elif url.path == "/stream":
            chunks = int(parse_qs(url.query).get("chunks", ["3"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(chunks):
                part = f"chunk {i}\n".encode()
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
                time.sleep(0.01)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._json({"message": f"no route {url.path}"}, 404)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        self.server.seen.append(("POST", url.path, url.query))
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/echo":
            self._json({"method": "POST", "path": self.path, "headers": [[k, v] for k, v in self.headers.items()],
                        "body": base64.b64encode(body).decode()})
        elif url.path == "/model/add":
            self.server.loaded.add(json.loads(body)["model_id"])
            self._json(self._registry())
        elif len(parts) == 2 and parts[0] == "infer" and parts[1] in ("object_detection", "classification"):
            request = json.loads(body)
            inference_id = str(uuid.uuid4())
            images = request["image"]
            results = [answer_for(request["model_id"], image_size(img), inference_id)
                       for img in (images if isinstance(images, list) else [images])]
            self._json(results if isinstance(images, list) else results[0])
        elif (len(parts) == 3 and parts[1] == "workflows") or parts == ["workflows", "run"]:
            request = json.loads(body)
            images = request.get("inputs", {}).get("image", [])
            outputs = []
            for img in images if isinstance(images, list) else [images]:
                result = detection(image_size(img), None)
                outputs.append({"model": {"inference_id": str(uuid.uuid4()), "model_id": "pcb-defects/7",
                                          "predictions": {"image": result["image"],
                                                          "predictions": result["predictions"]}},
                                "count": len(result["predictions"])})
            self._json({"outputs": outputs})
        elif len(parts) == 2 and parts[0].startswith("cut-"):  # breaks off in the middle of its answer
            data = json.dumps(answer_for("/".join(parts), image_size(body), str(uuid.uuid4()))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif len(parts) == 2:  # the legacy route: /{project}/{version}?api_key=..., body: base64 image
            self._json(answer_for("/".join(parts), image_size(body), str(uuid.uuid4())))
        else:
            self._json({"message": f"no route {url.path}"}, 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.loaded: set[str] = set()
        self.seen: list[tuple[str, str, str]] = []


class FakeUpstream:
    """The fake inference server on a loopback port, in a thread of this process."""

    def __init__(self, port: int = 0) -> None:
        self._server = _Server(port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-upstream", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        """(method, path, query) of every request received, in order."""
        return self._server.seen

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    server = _Server(args.port)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
