"""Datasets out for relabelling: the export zip loaded back with the real `supervision`
(`DetectionDataset.from_coco` / `from_yolo`), its boxes and classes compared with what the store
holds; filters narrow it; bad requests get the one error shape; the CLI writes the same zip."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inferwatch import cli
from tests.conftest import Workspace, attach, ingest, open_workspace
from tests.server import InProcess, Server

with warnings.catch_warnings():  # supervision says it runs without OpenCV, which it may here
    warnings.simplefilter("ignore")
    import supervision as sv


def jpeg(width: int, height: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, 90)).save(out, format="JPEG")
    return out.getvalue()


def upload(ws: Workspace, inference_id: str, data: bytes) -> None:
    reply = ws.client.post("/dataset/parts/upload", params={"inference_id": inference_id},
                           files={"file": (f"{inference_id}.jpg", data, "image/jpeg")})
    assert reply.status_code == 200, reply.text


def det(cls: str, conf: float, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"class": cls, "confidence": conf, "x": x, "y": y, "width": w, "height": h}


SEEN = {  # inference id: (the size the model saw, its detections); every image is uploaded at 640x480
    "frame-a": ((640, 480), [det("scratch", 0.91, 100, 120, 40, 30), det("dent", 0.42, 300.5, 200, 60, 20)]),
    "frame-b": ((640, 480), [det("dent", 0.77, 500, 400, 80, 50)]),
    # The model saw a 320x240 copy: its boxes are scaled to the uploaded image.
    "frame-c": ((320, 240), [det("Crack \"deep\": ÿ", 0.55, 50, 60, 20, 10)]),
    "frame-empty": ((640, 480), []),
}


def seed(ws: Workspace) -> None:
    items = [{"model_id": "parts/3", "inference_id": iid, "device_id": "cam-1",
              "result": {"image": {"width": size[0], "height": size[1]}, "predictions": preds}}
             for iid, (size, preds) in SEEN.items()]
    # One without an image: there is nothing to label, so it is not exported.
    items.append({"model_id": "parts/3", "inference_id": "no-image",
                  "result": {"predictions": [det("dent", 0.9, 10, 10, 5, 5)]}})
    ingest(ws, items)
    for n, iid in enumerate(SEEN):
        upload(ws, iid, jpeg(640, 480, 40 * n))
    attach(ws, [{"inference_ids": ["frame-b", "frame-c"], "field_name": "line", "field_value": "3"}])


@pytest.fixture(scope="module")
def loaded(app_server: InProcess) -> Iterator[Workspace]:
    with open_workspace(app_server, "export") as ws:
        seed(ws)
        yield ws


def expected(inference_id: str) -> list[tuple[str, list[float]]]:
    (w, h), preds = SEEN[inference_id]
    sx, sy = 640 / w, 480 / h
    return sorted((p["class"], [(p["x"] - p["width"] / 2) * sx, (p["y"] - p["height"] / 2) * sy,
                                (p["x"] + p["width"] / 2) * sx, (p["y"] + p["height"] / 2) * sy]) for p in preds)


def unpack(body: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(folder)
    return folder


def class_ids(detections: sv.Detections) -> list[int]:
    assert detections.class_id is not None
    return [int(c) for c in detections.class_id]


def found(dataset: sv.DetectionDataset) -> dict[str, list[tuple[str, list[float]]]]:
    """inference id -> sorted (class, xyxy) of what supervision loaded, through the file names."""
    out = {}
    for path, detections in dataset.annotations.items():
        inference_id = Path(path).stem.split("_", 1)[1]
        out[inference_id] = sorted((dataset.classes[int(c)], [float(v) for v in box])
                                   for c, box in zip(class_ids(detections), detections.xyxy, strict=True))
    return out


def assert_same(got: dict[str, list[tuple[str, list[float]]]], ids: list[str], tolerance: float) -> None:
    assert sorted(got) == sorted(ids)
    for iid in ids:
        want = expected(iid)
        assert [c for c, _ in got[iid]] == [c for c, _ in want], iid
        for (_, box), (_, want_box) in zip(got[iid], want, strict=True):
            assert box == pytest.approx(want_box, abs=tolerance), iid


def test_coco_loads_back_with_the_stored_boxes(loaded: Workspace, tmp_path: Path) -> None:
    reply = loaded.client.get(f"{loaded.api}/export/dataset", params={"format": "coco"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/zip"
    assert "attachment" in reply.headers["content-disposition"]
    folder = unpack(reply.content, tmp_path)
    dataset = sv.DetectionDataset.from_coco(str(folder / "images"), str(folder / "annotations.json"))
    assert dataset.classes == ["Crack \"deep\": ÿ", "dent", "scratch"]
    assert_same(found(dataset), list(SEEN), 1e-9)
    coco = json.loads((folder / "annotations.json").read_text())
    assert {i["inference_id"] for i in coco["images"]} == set(SEEN)
    scores = sorted(a["score"] for a in coco["annotations"])
    assert scores == sorted(p["confidence"] for _, preds in SEEN.values() for p in preds)
    # The images are the uploaded bytes.
    first = next(i for i in coco["images"] if i["inference_id"] == "frame-b")
    assert (folder / "images" / first["file_name"]).read_bytes() == jpeg(640, 480, 40)


def test_yolo_loads_back_with_the_same_classes(loaded: Workspace, tmp_path: Path) -> None:
    reply = loaded.client.get(f"{loaded.api}/export/dataset", params={"format": "yolo"})
    assert reply.status_code == 200, reply.text
    folder = unpack(reply.content, tmp_path)
    dataset = sv.DetectionDataset.from_yolo(str(folder / "images" / "train"), str(folder / "labels" / "train"),
                                            str(folder / "data.yaml"))
    assert dataset.classes == ["Crack \"deep\": ÿ", "dent", "scratch"]
    # Normalised to six decimals: within a thousandth of a pixel on 640x480.
    assert_same(found(dataset), list(SEEN), 1e-3)


def test_filters_choose_what_is_exported(loaded: Workspace, tmp_path: Path) -> None:
    reply = loaded.client.get(f"{loaded.api}/export/dataset",
                              params=[("format", "coco"), ("meta.line", "3"), ("max_confidence", "0.8")])
    assert reply.status_code == 200, reply.text
    folder = unpack(reply.content, tmp_path)
    dataset = sv.DetectionDataset.from_coco(str(folder / "images"), str(folder / "annotations.json"))
    # The classes are those of what was exported; every prediction of a chosen image comes along.
    assert dataset.classes == ["Crack \"deep\": ÿ", "dent"]
    assert_same(found(dataset), ["frame-b", "frame-c"], 1e-9)


@pytest.mark.parametrize(("params", "detail"), [
    ({"format": "voc"}, "format must be one of coco, yolo"),
    ({"format": "coco", "colour": "red"}, "unknown query parameter 'colour'"),
    ({"format": "coco", "min_confidence": "2"}, "min_confidence"),
])
def test_bad_requests_get_the_error_shape(loaded: Workspace, params: dict[str, str], detail: str) -> None:
    reply = loaded.client.get(f"{loaded.api}/export/dataset", params=params)
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] and detail in body["detail"]


def test_another_workspace_key_is_refused(loaded: Workspace, other: Workspace) -> None:
    reply = other.client.get(f"{loaded.api}/export/dataset")
    assert reply.status_code == 403
    assert reply.json()["error"]


def test_cli_writes_the_zip(server: Server, tmp_path: Path) -> None:
    with open_workspace(server, "cli-export") as loaded:
        seed(loaded)
        out = tmp_path / "dataset.zip"
        runner = CliRunner()
        done = runner.invoke(cli.app, ["export-dataset", str(out), "--url", server.url, "--api-key", loaded.key,
                                       "--format", "yolo", "-f", "class=scratch"])
        assert done.exit_code == 0, done.output
        assert "wrote" in done.output
        folder = unpack(out.read_bytes(), tmp_path / "unzipped")
        dataset = sv.DetectionDataset.from_yolo(str(folder / "images" / "train"), str(folder / "labels" / "train"),
                                                str(folder / "data.yaml"))
        assert_same(found(dataset), ["frame-a"], 1e-3)
        refused = runner.invoke(cli.app, ["export-dataset", str(tmp_path / "x.zip"), "--url", server.url,
                                          "--api-key", loaded.key, "-f", "colour=red"])
        assert refused.exit_code == 1 and "colour" in refused.output
        assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()


def test_images_are_the_export_s_pixels(loaded: Workspace, tmp_path: Path) -> None:
    """The COCO sizes are the image files' own."""
    reply = loaded.client.get(f"{loaded.api}/export/dataset", params={"format": "coco", "class": "dent"})
    folder = unpack(reply.content, tmp_path)
    coco = json.loads((folder / "annotations.json").read_text())
    for image in coco["images"]:
        with Image.open(folder / "images" / image["file_name"]) as img:
            assert (image["width"], image["height"]) == img.size
            assert np.asarray(img).shape == (480, 640, 3)


def test_images_without_boxes_still_load(ws: Workspace, tmp_path: Path) -> None:
    """A classifier's images: exported for labelling, with no box and no class yet."""
    ingest(ws, [{"model_id": "sorter/1", "inference_id": "cls-1",
                 "result": {"image": {"width": 640, "height": 480}, "predictions": [{"class": "ok", "confidence": 0.9}],
                            "top": "ok", "confidence": 0.9}}])
    upload(ws, "cls-1", jpeg(640, 480, 7))
    for fmt in ("yolo", "coco"):
        reply = ws.client.get(f"{ws.api}/export/dataset", params={"format": fmt})
        assert reply.status_code == 200, reply.text
        folder = unpack(reply.content, tmp_path / fmt)
        if fmt == "yolo":
            dataset = sv.DetectionDataset.from_yolo(str(folder / "images" / "train"),
                                                    str(folder / "labels" / "train"), str(folder / "data.yaml"))
        else:
            dataset = sv.DetectionDataset.from_coco(str(folder / "images"), str(folder / "annotations.json"))
        assert dataset.classes == [] and len(dataset) == 1
        assert found(dataset) == {"cls-1": []}
