"""Images kept in an object store (`--image-store s3://bucket/prefix`): uploads land in the bucket,
not the data dir, and are served back (whole, as thumbnails, after a restart) by the server.

The S3 endpoint is a local S3-protocol server (moto's standalone server) on a loopback port; the
inferwatch server reaches it through the same `AWS_*` variables a deployment would set.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from tests.conftest import ingest, item, open_workspace
from tests.e2e.test_images import picture, upload
from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own

BUCKET = "plant-images"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "inferwatch", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT": f"http://{host}:{port}", "AWS_ALLOW_HTTP": "true"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT"], region_name="us-east-1",
                 aws_access_key_id="inferwatch", aws_secret_access_key="secret").create_bucket(Bucket=BUCKET)
    yield env
    srv.stop()


def bucket_keys(env: dict[str, str]) -> list[str]:
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT"], region_name="us-east-1",
                          aws_access_key_id="inferwatch", aws_secret_access_key="secret")
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_uploads_go_to_the_bucket_and_are_served_from_it_across_restarts(s3: dict[str, str], tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", "--image-store", f"s3://{BUCKET}/frames", env=s3).start()
    try:
        with open_workspace(srv) as ws:
            ingest(ws, [item("cam-1")])
            data = picture("PNG", size=(600, 300))
            digest = hashlib.sha256(data).hexdigest()
            reply = upload(srv, ws.key, data, content_type="image/png", params=[("inference_id", "cam-1")])
            assert reply.json() == {"success": True, "id": digest}
            assert upload(srv, ws.key, data, content_type="image/png").json() == {"duplicate": True, "id": digest}
            assert bucket_keys(s3) == [f"frames/{digest[:2]}/{digest[2:]}"]
            assert not (srv.data_dir / "images").exists()

            assert ws.client.get(f"{ws.api}/inferences/cam-1/image").content == data
            thumb = ws.client.get(f"{ws.api}/inferences/cam-1/image", params={"size": "thumb"})
            assert thumb.headers["content-type"] == "image/jpeg"
            with Image.open(io.BytesIO(thumb.content)) as img:
                assert img.size == (256, 128)
            assert f"frames/{digest[:2]}/{digest[2:]}.t256.jpg" in bucket_keys(s3)
            slug, key = ws.slug, ws.key
        srv.stop()
        srv.start()
        got = httpx.get(f"{srv.url}/api/v1/{slug}/images/{digest}", headers={"Authorization": f"Bearer {key}"})
        assert got.status_code == 200 and got.content == data
    finally:
        srv.stop()


def test_an_unusable_image_store_url_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", "--image-store", "nosuchscheme://bucket")
    with pytest.raises(RuntimeError, match="cannot use the image store 'nosuchscheme://bucket'"):
        srv.start(timeout=15)
