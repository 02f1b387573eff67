"""Pure helpers of the API layer: gzip bodies and list cursors."""

from __future__ import annotations

import gzip
import zlib

import pytest

from inferwatch.api.common import _gunzip, whole_number
from inferwatch.api.inferences import _decode_cursor, _encode_cursor
from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits
from inferwatch.store.base import Cursor


def test_gunzip_one_member() -> None:
    assert _gunzip(gzip.compress(b"hello")) == b"hello"


def test_gunzip_every_member() -> None:
    assert _gunzip(gzip.compress(b"a\n") + gzip.compress(b"") + gzip.compress(b"b\n")) == b"a\nb\n"


# Named: gzip bytes hold the time they were made, and every xdist worker must collect the same ids.
@pytest.mark.parametrize("body", [b"", b"plain", gzip.compress(b"x" * 1000)[:-3], gzip.compress(b"ok") + b"junk"],
                         ids=["empty", "plain", "truncated", "trailing-junk"])
def test_gunzip_refuses_what_is_not_whole_gzip(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        _gunzip(body)


def test_gunzip_limit_holds_across_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_DECODED_BYTES", 100)
    assert len(_gunzip(gzip.compress(b"x" * 60) + gzip.compress(b"y" * 40))) == 100
    with pytest.raises(PayloadTooLarge):
        _gunzip(gzip.compress(b"x" * 60) + gzip.compress(b"y" * 41))
    with pytest.raises(PayloadTooLarge):
        _gunzip(gzip.compress(b"x" * 101))


def test_gunzip_stops_a_bomb_early() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(129)) + packer.flush()
    with pytest.raises(PayloadTooLarge):
        _gunzip(bomb)


@pytest.mark.parametrize("cursor", [Cursor(0, "a", 0), Cursor(1_767_225_600_123_456, "id/with ünïcode", 7),
                                    Cursor(-1, "", 2**31 - 1)])
def test_cursor_round_trip(cursor: Cursor) -> None:
    text = _encode_cursor(cursor)
    assert "=" not in text and "+" not in text and "/" not in text
    assert _decode_cursor(text) == cursor


@pytest.mark.parametrize("text", ["", "!!", "é", "WyJ4Il0", "e30"])
def test_cursor_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        _decode_cursor(text)


@pytest.mark.parametrize(("text", "value"), [(None, 50), ("1", 1), ("1000", 1000), (" 7 ", 7)])
def test_limit(text: str | None, value: int) -> None:
    assert whole_number(text, "limit", 50, 1000) == value


@pytest.mark.parametrize("text", ["0", "1001", "-1", "x", "2.5", ""])
def test_limit_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        whole_number(text, "limit", 50, 1000)
