"""Query-string parsing into Filters, and the time parser shared by every read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferwatch.errors import InvalidRequest
from inferwatch.query.filters import Filters, MetaTerm, default_range, parse_filters, parse_time, typed_term


@pytest.mark.parametrize(("text", "expected"), [
    ("1767225600", datetime(2026, 1, 1, tzinfo=UTC)),
    ("1767225600.5", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    (" 1767225600 ", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-01-01 02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2025-12-31T19:00:00-05:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ("1e-5", datetime(1970, 1, 1, 0, 0, 0, 10, tzinfo=UTC)),  # a number with a dash
])
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, "from")
    assert parsed == expected
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "soon", "2026-02-30", "2026-1-01", "1e12", "-1e12", "nan", "inf", "-70000000000",
                                  "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_time(text, "from")
    assert "from" in str(caught.value.detail)


def test_parse_filters_collects_every_kind_of_term() -> None:
    f = parse_filters([
        ("from", "2026-01-01"), ("to", "2026-01-02"), ("model_id", "a"), ("model_id", "b"),
        ("device_id", "d"), ("class", "cat"), ("tag", "x"), ("min_confidence", "0.25"),
        ("max_confidence", "1"), ("meta.site", "s1"), ("meta.site", "s2"), ("meta.Line", "3"),
        ("api_key", "k"), ("limit", "5"),
    ], extra_keys=("limit",))
    assert f == Filters(
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC),
        model_ids=("a", "b"), device_ids=("d",), classes=("cat",), tags=("x",),
        min_confidence=0.25, max_confidence=1.0,
        meta=(MetaTerm.equal("site", "s1", "s2"), MetaTerm.equal("Line", "3")),
    )
    assert f.on_predictions


def test_empty_filters() -> None:
    f = parse_filters([])
    assert f == Filters()
    assert not f.on_predictions


def test_a_confidence_bound_alone_is_a_prediction_filter() -> None:
    assert parse_filters([("max_confidence", "0.2")]).on_predictions
    assert not parse_filters([("tag", "x")]).on_predictions


@pytest.mark.parametrize("params", [
    [("limit", "5")],  # not allowed unless the route lists it
    [("modelid", "a")],
    [("meta.", "x")],
    [("from", "2026-01-01"), ("from", "2026-01-02")],
    [("from", "2026-01-02"), ("to", "2026-01-01")],
    [("min_confidence", "1.01")],
    [("max_confidence", "-0.5")],
    [("min_confidence", "abc")],
    [("min_confidence", "nan")],
    [("meta.t[between]", "1")],  # an operator that is not one
    [("meta.t[GT]", "1")],
    [("meta.t[gt]", "warm")],  # a bound must be a number
    [("meta.t[lte]", "nan")],
    [("meta.t[gte]", "1e999")],
    [("meta.t[lt]", "")],
    [("meta.[gt]", "1")],
    [("meta.t[x][gt]", "1"), ("meta.t[y]", "1")],
])
def test_parse_filters_refuses(params: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest):
        parse_filters(params)


def test_from_equal_to_to_is_allowed() -> None:
    f = parse_filters([("from", "2026-01-01"), ("to", "2026-01-01")])
    assert f.start == f.end


def test_default_range() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    f = default_range(Filters(model_ids=("a",)), now)
    assert (f.start, f.end, f.model_ids) == (now - timedelta(hours=24), now, ("a",))
    end = datetime(2026, 1, 2, tzinfo=UTC)
    f = default_range(Filters(end=end), now)
    assert (f.start, f.end) == (end - timedelta(hours=24), end)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    f = default_range(Filters(start=start), now, span=timedelta(hours=1))
    assert (f.start, f.end) == (start, now)


def test_default_range_near_the_start_of_the_calendar() -> None:
    end = datetime(1, 1, 1, 6, tzinfo=UTC)
    f = default_range(Filters(end=end), datetime(2026, 1, 1, tzinfo=UTC))
    assert (f.start, f.end) == (datetime.min.replace(tzinfo=UTC), end)


def test_with_range_keeps_every_other_term() -> None:
    f = parse_filters([("model_id", "a"), ("device_id", "d"), ("class", "c"), ("tag", "t"),
                       ("min_confidence", "0.1"), ("max_confidence", "0.9"), ("meta.k", "v")])
    moved = f.with_range(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert moved == Filters(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), *(
        getattr(f, name) for name in ("model_ids", "device_ids", "classes", "tags", "min_confidence",
                                      "max_confidence", "meta")))


def test_metadata_comparisons_name_their_operator_after_the_field() -> None:
    f = parse_filters([
        ("meta.t[gt]", "100"), ("meta.t[lte]", "2e2"), ("meta.t", "hot"), ("meta.t[eq]", "150"),
        ("meta.t[eq]", "warm"), ("meta.t[neq]", "7"), ("meta.t[neq]", "cold"), ("meta.ok[eq]", "true"),
    ])
    assert f.meta == (
        MetaTerm("t", texts=("hot", "warm"), numbers=(150.0,), bounds=((">", 100.0), ("<=", 200.0)),
                 not_texts=("cold",), not_numbers=(7.0,)),
        MetaTerm("ok", texts=("true",)),
    )
    assert parse_filters([("meta.t[gte]", "-2.5"), ("meta.t[lt]", "0")]).meta == (
        MetaTerm("t", bounds=((">=", -2.5), ("<", 0.0))),)


def test_plain_values_keep_their_meaning_whatever_they_hold() -> None:
    f = parse_filters([("meta.url", "http://x"), ("meta.t", "gt:150"), ("meta.n", "150")])
    assert f.meta == (MetaTerm.equal("url", "http://x"), MetaTerm.equal("t", "gt:150"), MetaTerm.equal("n", "150"))


def test_a_field_whose_name_ends_in_brackets_is_named_with_an_operator() -> None:
    assert parse_filters([("meta.a[b][eq]", "v")]).meta == (MetaTerm.equal("a[b]", "v"),)
    assert parse_filters([("meta.labels[0]", "v")]).meta == (MetaTerm.equal("labels[0]", "v"),)
    with pytest.raises(InvalidRequest) as caught:
        parse_filters([("meta.a[b]", "v")])
    assert "meta.a[b][eq]" in str(caught.value.detail)


@pytest.mark.parametrize(("args", "term"), [
    (("t", "gt", 150), MetaTerm("t", bounds=((">", 150.0),))),
    (("t", "lte", 3.5, "number"), MetaTerm("t", bounds=(("<=", 3.5),))),
    (("t", "gte", "150", "number"), MetaTerm("t", bounds=((">=", 150.0),))),
    (("t", "eq", 150), MetaTerm("t", numbers=(150.0,))),
    (("t", "neq", 150.5), MetaTerm("t", not_numbers=(150.5,))),
    (("t", "eq", "150"), MetaTerm("t", texts=("150",))),  # a string compares as text
    (("r", "eq", "fail", "string"), MetaTerm("r", texts=("fail",))),
    (("r", "neq", "fail"), MetaTerm("r", not_texts=("fail",))),
    (("ok", "eq", True), MetaTerm("ok", texts=("true",))),
    (("ok", "neq", "false", "boolean"), MetaTerm("ok", not_texts=("false",))),
])
def test_typed_terms_compare_as_their_operand_says(args: tuple[object, ...], term: MetaTerm) -> None:
    assert typed_term(*args) == term  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    ("t", "between", 1), ("t", "gt", "warm"), ("t", "gt", True), ("t", "lt", "x", "string"),
    ("t", "gt", "warm", "number"), ("t", "eq", float("nan")), ("t", "eq", float("inf"), "number"),
    ("ok", "eq", "yes", "boolean"), ("t", "eq", 3, "string"), ("t", "eq", "x", "date"), ("t", "gt", 10**400),
])
def test_typed_terms_refuse_what_they_cannot_compare(args: tuple[object, ...]) -> None:
    with pytest.raises(InvalidRequest):
        typed_term(*args)  # type: ignore[arg-type]
