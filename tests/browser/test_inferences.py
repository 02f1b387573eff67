"""The inferences table: newest first, filters typed or picked and kept in the URL, a metadata
value that filters by itself, metadata columns, pages, the CSV export of the filtered rows, and
their images with predictions as a dataset for labelling."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from tests.browser.conftest import CANADA, IMAGE_BOXES, IMAGE_ID, MEXICO, PCB, TOTAL, Tab
from tests.e2e.test_dataset_export import class_ids, sv


def cells(tab: Tab, column: int) -> list[str]:
    return tab.page.locator(f"#inference-table tbody tr td:nth-child({column})").all_inner_texts()


def header(tab: Tab) -> list[str]:
    return tab.page.locator("#inference-table thead th").all_inner_texts()


def test_the_table_lists_newest_first_in_pages(tab: Tab) -> None:
    page = tab.open("/inferences")
    tab.shot("inferences")
    assert page.inner_text("#match-count") == f"{TOTAL} match"
    first_page = page.locator("#inference-table tbody tr").count()
    assert first_page == 50
    first = page.locator("#inference-table tbody tr").first
    assert first.locator("td").nth(1).inner_text() == PCB  # the inference with the image, 10 minutes old
    page.click("#older")
    tab.arrive("cursor=")
    assert page.locator("#inference-table tbody tr").count() == TOTAL - first_page
    assert page.is_visible("#newest")
    assert not page.is_visible("#older")


def test_filter_by_a_typed_metadata_value_shows_only_matching_rows(tab: Tab) -> None:
    page = tab.open("/inferences")
    page.fill("#meta-field", "camera_location")
    page.fill("#meta-value", "canada")
    page.click("text=Apply filters")
    tab.arrive("meta.camera_location=canada")
    tab.shot("inferences-filtered")
    assert "camera_location" in header(tab)
    column = header(tab).index("camera_location") + 1
    assert cells(tab, column) == ["canada"] * CANADA
    assert page.inner_text("#match-count") == f"{CANADA} match"
    # The filter is a chip of the form; removing it widens the view again.
    page.click("#meta-chips button.remove")
    tab.arrive("columns=")
    assert page.locator("#inference-table tbody tr").count() == 50


def test_the_field_picker_offers_existing_fields_and_their_values(tab: Tab) -> None:
    page = tab.open("/inferences")
    fields = page.eval_on_selector_all("#fields-list option", "os => os.map(o => o.value)")
    assert {"camera_location", "line"} <= set(fields)
    page.fill("#meta-field", "camera_location")
    page.dispatch_event("#meta-field", "input")
    values = page.eval_on_selector_all("#values-list option", "os => os.map(o => o.value)")
    assert {"canada", "mexico"} <= set(values)
    models = page.eval_on_selector_all("#models-list option", "os => os.map(o => o.value)")
    assert PCB in models


def test_clicking_a_metadata_value_filters_by_it_and_combines_with_other_filters(tab: Tab) -> None:
    page = tab.open(f"/inferences?model_id={PCB}")
    column = header(tab).index("camera_location") + 1
    page.locator(f"#inference-table tbody td:nth-child({column}) a", has_text="mexico").first.click()
    tab.arrive("meta.camera_location=mexico")
    assert cells(tab, column) == ["mexico"] * MEXICO
    assert set(cells(tab, 2)) == {PCB}
    assert page.input_value("input[name=model_id]") == PCB


def test_prediction_filters_class_and_confidence(tab: Tab) -> None:
    page = tab.open("/inferences")
    page.fill("input[name=class]", "scratch")
    page.fill("input[name=min_confidence]", "0.7")
    page.click("text=Apply filters")
    tab.arrive("min_confidence=0.7")
    # PCB's odd inferences are scratches at 0.5 + i/100: i = 21, 23, ..., 39 reach 0.7; plus the image's 0.91.
    assert page.locator("#inference-table tbody tr").count() == 10 + 1


def test_columns_are_the_users_pick(tab: Tab) -> None:
    page = tab.open("/inferences")
    page.click("details.columns summary")
    page.uncheck("#column-picks input[value='meta.camera_location']")
    page.check("#column-picks input[value='meta.line']")
    page.click("text=Apply filters")
    tab.arrive("columns=meta.line")
    assert "line" in header(tab)
    assert "camera_location" not in header(tab)


def test_csv_export_holds_the_filtered_rows_with_their_metadata(tab: Tab) -> None:
    page = tab.open("/inferences?meta.camera_location=mexico&columns=meta.camera_location&columns=meta.line")
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert len(rows) == MEXICO
    assert {r["meta.camera_location"] for r in rows} == {"mexico"}
    assert {r["model_id"] for r in rows} == {PCB}
    assert sorted(r["inference_id"] for r in rows) == [f"pcb-{i:03d}" for i in range(CANADA, CANADA + MEXICO)]
    assert sum(1 for r in rows if r["meta.line"] == "3") == MEXICO // 4
    assert list(rows[0])[:4] == ["inference_id", "image_index", "timestamp", "model_id"]
    assert IMAGE_ID not in {r["inference_id"] for r in rows}


def test_export_for_labelling_gives_the_filtered_images_with_their_boxes(tab: Tab, tmp_path: Path) -> None:
    page = tab.open("/inferences?class=scratch&device_id=cam-0")
    for fmt in ("coco", "yolo"):
        page.select_option("#dataset-format", fmt)
        with page.expect_download() as info:
            page.click("#export-dataset")
        download = info.value
        assert f"-{fmt}-" in download.suggested_filename and download.suggested_filename.endswith(".zip")
        folder = tmp_path / fmt
        with zipfile.ZipFile(download.path()) as archive:
            archive.extractall(folder)
        if fmt == "coco":
            dataset = sv.DetectionDataset.from_coco(str(folder / "images"), str(folder / "annotations.json"))
        else:
            dataset = sv.DetectionDataset.from_yolo(str(folder / "images" / "train"), str(folder / "labels" / "train"),
                                                    str(folder / "data.yaml"))
        # Of the scratch inferences of cam-0, only IMAGE_ID has an image: it alone, with both its boxes.
        assert len(dataset) == 1
        [(path, detections)] = dataset.annotations.items()
        assert Path(path).stem.endswith(IMAGE_ID)
        got = sorted((dataset.classes[int(c)], [round(float(v), 2) for v in box])
                     for c, box in zip(class_ids(detections), detections.xyxy, strict=True))
        assert got == sorted((b["class"], [b["x"] - b["width"] / 2, b["y"] - b["height"] / 2,
                                           b["x"] + b["width"] / 2, b["y"] + b["height"] / 2]) for b in IMAGE_BOXES)
