"""One inference: its properties and metadata, a sortable predictions table, raw JSON, and the
uploaded image with its boxes drawn on the canvas."""

from __future__ import annotations

from tests.browser.conftest import (
    BATCH_ID,
    IMAGE_BOXES,
    IMAGE_GREY,
    IMAGE_ID,
    IMAGE_SIZE,
    PCB,
    SHAPES,
    SHAPES_ID,
    SHAPES_SIZE,
    Tab,
)

# Reads the canvas back: how many pixels are not the image's grey, and the colour at a point
# given in the image's own coordinates.
_NOT_GREY = """([r, g, b]) => {
  const c = document.getElementById('canvas');
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) > 60) n++;
  }
  return n;
}"""
_PIXEL = """([x, y, w, h]) => {
  const c = document.getElementById('canvas');
  const at = [Math.round(x * c.width / w), Math.round(y * c.height / h)];
  return Array.from(c.getContext('2d').getImageData(at[0], at[1], 1, 1).data);
}"""


def grey(rgba: list[int]) -> bool:
    return sum(abs(a - b) for a, b in zip(rgba[:3], IMAGE_GREY, strict=True)) < 30


def test_the_uploaded_image_is_drawn_with_its_boxes(tab: Tab) -> None:
    page = tab.open(f"/inferences/{IMAGE_ID}")
    tab.shot("inference")
    assert page.get_attribute("#canvas", "data-drawn") == str(len(IMAGE_BOXES))
    assert page.evaluate(_NOT_GREY, list(IMAGE_GREY)) > 500
    w, h = IMAGE_SIZE
    box = IMAGE_BOXES[1]  # below the first one's label: its left edge is only the stroke
    left, mid_y = box["x"] - box["width"] / 2, box["y"]
    assert not grey(page.evaluate(_PIXEL, [left, mid_y, w, h])), "the box's edge is drawn"
    assert grey(page.evaluate(_PIXEL, [box["x"], box["y"], w, h])), "its inside is the image"
    assert grey(page.evaluate(_PIXEL, [160, 120, w, h])), "the image away from boxes is untouched"
    # Labels off: the boxes stay, the label backgrounds go.
    with_labels = page.evaluate(_NOT_GREY, list(IMAGE_GREY))
    page.uncheck("#show-labels")
    assert 0 < page.evaluate(_NOT_GREY, list(IMAGE_GREY)) < with_labels


def test_masks_and_keypoints_are_drawn(tab: Tab) -> None:
    page = tab.open(f"/inferences/{SHAPES_ID}")
    tab.shot("inference-shapes")
    assert page.get_attribute("#canvas", "data-drawn") == str(len(SHAPES))
    w, h = SHAPES_SIZE
    assert not grey(page.evaluate(_PIXEL, [50, 65, w, h])), "the polygon is filled"
    nose = SHAPES[1]["keypoints"][0]
    assert not grey(page.evaluate(_PIXEL, [nose["x"], nose["y"], w, h])), "a keypoint is a dot"
    assert grey(page.evaluate(_PIXEL, [120, 90, w, h])), "between the shapes the image is untouched"
    shapes = page.locator("#predictions-table tbody td:nth-child(8)").all_inner_texts()
    assert sorted(shapes) == ["2 keypoints", "polygon, 4 points"]


def test_properties_metadata_predictions_and_raw_json(tab: Tab) -> None:
    page = tab.open("/inferences/pcb-004")
    assert page.inner_text("#inference-id") == "pcb-004"
    props = dict(zip(page.locator("#properties dt").all_inner_texts(),
                     page.locator("#properties dd").all_inner_texts(), strict=True))
    assert props["Model"] == PCB
    assert props["Device"] == "cam-1"
    assert props["Inference time"] == "20.0 ms"
    meta = page.locator("#metadata-table tbody tr td").all_inner_texts()
    assert meta == ["camera_location", "canada", "line", "3"]
    page.click("summary:text('Raw JSON')")
    assert '"inference_id": "pcb-004"' in page.inner_text("#raw")
    assert not page.is_visible("#canvas")
    assert page.is_visible("#no-image")
    # A metadata value filters the table by it.
    page.click("#metadata-table a:text-is('3')")
    tab.arrive("meta.line=3")
    assert page.locator("#inference-table tbody tr").count() == 10


def test_predictions_sort_by_class_and_confidence(tab: Tab) -> None:
    page = tab.open(f"/inferences/{IMAGE_ID}")
    classes = "#predictions-table tbody td:nth-child(2)"
    assert page.locator(classes).all_inner_texts() == ["scratch", "dent"]  # by confidence, highest first
    page.click("#predictions-table button[data-key=confidence]")
    assert page.locator(classes).all_inner_texts() == ["dent", "scratch"]
    page.click("#predictions-table button[data-key=class]")
    assert page.locator(classes).all_inner_texts() == ["dent", "scratch"]
    assert page.get_attribute("#predictions-table th:has(button[data-key=class])", "aria-sort") == "ascending"


def test_copy_id_puts_the_id_on_the_clipboard(tab: Tab) -> None:
    page = tab.open(f"/inferences/{IMAGE_ID}")
    page.click("#copy-id")
    page.wait_for_selector("#copied:text('Copied.')")
    assert page.evaluate("navigator.clipboard.readText()") == IMAGE_ID


def test_a_batched_request_links_each_of_its_images(tab: Tab) -> None:
    page = tab.open(f"/inferences/{BATCH_ID}")
    props = dict(zip(page.locator("#properties dt").all_inner_texts(),
                     page.locator("#properties dd").all_inner_texts(), strict=True))
    assert props["Image index"] == "0 1 of 2"
    assert props["Top confidence"] == "60.0%"
    page.click("#properties a:text-is('1')")
    tab.arrive("image_index=1")
    assert page.inner_text("#properties").count("70.0%") == 1
