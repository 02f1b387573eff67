"""Every size limit ingest enforces, in one place so the README and the code cannot disagree.

Each limit protects the server (memory, a writer transaction, a query) from one request; all are
far above what a real client sends.
"""

from __future__ import annotations

MAX_BODY_BYTES = 32 * 1024 * 1024  # as sent (compressed or not) -> 413
MAX_DECODED_BYTES = 128 * 1024 * 1024  # after gzip decompression -> 413
MAX_ITEMS_PER_BATCH = 10_000  # inferences per ingest request -> 413
MAX_PREDICTIONS_PER_ITEM = 10_000
MAX_TAGS_PER_ITEM = 64
MAX_METADATA_PER_ITEM = 256
MAX_METADATA_ENTRIES = 10_000  # entries in one metadata call -> 413
MAX_IDS_PER_METADATA_CALL = 100_000  # inference ids summed over a call's entries -> 413
MAX_ID_LEN = 256  # inference ids, device ids, tags
MAX_MODEL_ID_LEN = 256
MAX_FIELD_NAME_LEN = 128
MAX_FIELD_VALUE_LEN = 4096
MAX_CLASS_LEN = 256
MAX_EXTRA_JSON_BYTES = 1024 * 1024  # geometry (points, keypoints) and unknown result fields per item
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # one uploaded image file -> 413
MAX_IMAGE_FORM_BYTES = 1024 * 1024  # an upload's other form fields (name, metadata) and framing -> 413
MAX_IMAGE_PIXELS = 50_000_000  # width x height of an uploaded image (decompression bombs) -> 400
MAX_IMAGE_TAGS = 64  # `tag` parameters of one upload

# Inference times outside this window are typing or clock errors, not data (2000-01-01 .. 2100-01-01).
MIN_TIMESTAMP_S = 946_684_800
MAX_TIMESTAMP_S = 4_102_444_800
