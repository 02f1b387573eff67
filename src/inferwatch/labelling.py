"""Datasets out for relabelling: the filtered inferences' images, with the model's predictions as
pre-annotations, as one zip in COCO or YOLO (Ultralytics) layout.

What a labelling tool (CVAT, Label Studio, Roboflow) imports, and what `supervision` loads with
`DetectionDataset.from_coco` / `from_yolo`:

- COCO: `images/<name>`, `annotations.json` (`bbox` as top-left x, y, width, height in pixels;
  a segmentation's polygon as `segmentation`; the prediction's `score`).
- YOLO: `images/train/<name>`, `labels/train/<stem>.txt` (`class cx cy w h`, normalised),
  `data.yaml` naming the classes.

Only inferences with an uploaded image are exported (there is nothing to label otherwise), and
only predictions with a box (a classifier's verdict has none). Class ids are the export's own:
every class found, sorted by name, so one class has one id across every model in the export.
Boxes are scaled from the image the model saw (the result's `image` size) to the uploaded one
when the two differ. Images are read and written one at a time, so the zip streams out while
only the (small) annotations are held until the end.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from inferwatch.image_store import ImageStore
from inferwatch.query.filters import Filters
from inferwatch.store.base import InferenceRow, Store

FORMATS = ("coco", "yolo")
MAX_IMAGES = 100_000
_PAGE = 500
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/bmp": ".bmp",
               "image/gif": ".gif"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(slots=True)
class _Box:
    cls: str
    x: float  # top-left, pixels of the exported image
    y: float
    width: float
    height: float
    score: float
    polygon: list[float] | None = None


@dataclass(slots=True)
class _Image:
    file_name: str
    inference_id: str
    model_id: str
    width: int
    height: int
    boxes: list[_Box] = field(default_factory=list)


class _Sink:
    """A write-only file for `zipfile` that hands out what was written since the last take."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts = []
        return data


def dataset_zip(store: Store, images: ImageStore, ws: int, filters: Filters, fmt: str) -> Iterator[bytes]:
    """The zip's bytes, a piece per image; annotations are written once every image is in."""
    sink = _Sink()
    exported: list[_Image] = []
    with zipfile.ZipFile(sink, "w") as archive:  # type: ignore[call-overload]
        folder = "images/" if fmt == "coco" else "images/train/"
        for image, data in _images(store, images, ws, filters):
            archive.writestr(folder + image.file_name, data, compress_type=zipfile.ZIP_STORED)
            exported.append(image)
            yield sink.take()
        classes = sorted({box.cls for image in exported for box in image.boxes})
        if fmt == "coco":
            archive.writestr("annotations.json", json.dumps(coco(exported, classes)),
                             compress_type=zipfile.ZIP_DEFLATED)
        else:
            ids = {name: i for i, name in enumerate(classes)}
            for image in exported:
                stem = image.file_name.rsplit(".", 1)[0]
                archive.writestr(f"labels/train/{stem}.txt", yolo_lines(image, ids),
                                 compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr("data.yaml", data_yaml(classes), compress_type=zipfile.ZIP_DEFLATED)
    yield sink.take()


def _images(store: Store, files: ImageStore, ws: int, filters: Filters) -> Iterator[tuple[_Image, bytes]]:
    after = None
    seen: set[str] = set()
    while len(seen) < MAX_IMAGES:
        page, after = store.list_inferences(ws, filters, after, _PAGE)
        for row in page:
            inference_id = row.inference_id
            # An image belongs to an inference id: of a batched request's rows, the first one found.
            if inference_id in seen:
                continue
            record = store.image_of_inference(ws, inference_id)
            if record is None:
                continue
            try:
                data = files.read(record.sha256)
            except FileNotFoundError:
                continue
            seen.add(inference_id)
            width = record.width or row.image_width or 0
            height = record.height or row.image_height or 0
            name = f"{len(seen):06d}_{_UNSAFE.sub('_', inference_id)[:80]}{_EXTENSIONS.get(record.content_type, '')}"
            image = _Image(name, inference_id, row.model_id, width, height)
            image.boxes = _boxes(row, width, height)
            yield image, data
            if len(seen) >= MAX_IMAGES:
                return
        if after is None:
            return


def _boxes(row: InferenceRow, width: int, height: int) -> list[_Box]:
    seen_w = row.image_width or width
    seen_h = row.image_height or height
    sx = width / seen_w if seen_w else 1.0
    sy = height / seen_h if seen_h else 1.0
    boxes = []
    for p in row.predictions:
        if p.get("x") is None or p.get("width") is None:
            continue
        w, h = p["width"] * sx, p["height"] * sy
        polygon = None
        points = p.get("points")
        if isinstance(points, list) and len(points) >= 3:
            polygon = [v for pt in points if isinstance(pt, dict) for v in (pt.get("x", 0) * sx, pt.get("y", 0) * sy)]
        boxes.append(_Box(p["class"], p["x"] * sx - w / 2, p["y"] * sy - h / 2, w, h, p["confidence"], polygon))
    return boxes


def coco(exported: list[_Image], classes: list[str]) -> dict[str, Any]:
    """COCO detection annotations; category ids start at 1 (0 is left out, as COCO tools expect)."""
    ids = {name: i + 1 for i, name in enumerate(classes)}
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(exported, 1):
        for box in image.boxes:
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1, "image_id": image_id, "category_id": ids[box.cls],
                "bbox": [box.x, box.y, box.width, box.height], "area": box.width * box.height,
                "iscrowd": 0, "score": box.score, "segmentation": [box.polygon] if box.polygon else [],
            }
            annotations.append(annotation)
    return {
        "info": {"description": "inferwatch export: model predictions as pre-annotations"},
        "images": [{"id": i, "file_name": image.file_name, "width": image.width, "height": image.height,
                    "inference_id": image.inference_id, "model_id": image.model_id}
                   for i, image in enumerate(exported, 1)],
        "annotations": annotations,
        "categories": [{"id": ids[name], "name": name, "supercategory": "object"} for name in classes],
    }


def yolo_lines(image: _Image, ids: dict[str, int]) -> str:
    """One `class cx cy w h` line per box, normalised to the image's size."""
    if not image.width or not image.height:
        return ""
    lines = []
    for box in image.boxes:
        cx = (box.x + box.width / 2) / image.width
        cy = (box.y + box.height / 2) / image.height
        lines.append(f"{ids[box.cls]} {cx:.6f} {cy:.6f} {box.width / image.width:.6f} {box.height / image.height:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def data_yaml(classes: list[str]) -> str:
    """Ultralytics' dataset file. Class names are written as JSON strings, which YAML reads
    as they are whatever they hold (quotes, colons, non-ASCII)."""
    names = "".join(f"\n  {i}: {json.dumps(name)}" for i, name in enumerate(classes)) or " {}"
    return f"path: .\ntrain: images/train\nval: images/train\nnc: {len(classes)}\nnames:{names}\n"
