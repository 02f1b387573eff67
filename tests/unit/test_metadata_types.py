"""Typed metadata: a value keeps the JSON type it was sent as, and both stores hold the number
it reads as; stores made before types existed are migrated with their strings kept strings."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from inferwatch.ingest.metavalues import NUMBER_PATTERN, MetaScalar, answer_value, number_of, typed
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import Filters, MetaTerm, parse_filters, typed_term
from inferwatch.store import open_store
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore
from inferwatch.store.clickhouse import schema as ch_schema
from inferwatch.store.clickhouse.importer import copy_store, open_source
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.duckdb import schema as duck_schema
from tests.unit.test_store_parity import BASE_US, _add


@pytest.mark.parametrize(("value", "stored"), [
    ("canada", ("canada", "string", None)),
    ("150", ("150", "string", 150.0)),
    ("-2.5e3", ("-2.5e3", "string", -2500.0)),
    ("0x10", ("0x10", "string", None)),
    (" 4", (" 4", "string", None)),
    ("1_000", ("1_000", "string", None)),
    ("1e999", ("1e999", "string", None)),
    ("nan", ("nan", "string", None)),
    (150, ("150", "number", 150.0)),
    (151.5, ("151.5", "number", 151.5)),
    (1e-07, ("1e-07", "number", 1e-07)),
    (10**20, ("100000000000000000000", "number", 1e20)),
    (10**400, (str(10**400), "number", None)),
    (True, ("true", "boolean", None)),
    (False, ("false", "boolean", None)),
])
def test_a_value_is_stored_as_text_kind_and_number(value: str | int | float | bool,
                                                    stored: tuple[str, str, float | None]) -> None:
    assert typed(value) == stored
    text, kind, _ = stored
    assert answer_value(text, kind) == value and type(answer_value(text, kind)) is type(value)


def test_rows_stored_before_kinds_answer_their_text() -> None:
    assert answer_value("150", None) == "150"
    assert answer_value("true", "string") == "true"


def test_number_of_reads_only_json_numbers() -> None:
    assert number_of("0") == 0.0 and number_of("-0.5") == -0.5 and number_of("1E+2") == 100.0
    for text in ("", "-", "01", "1.", ".5", "+1", "1e", "Infinity", "1 ", "x1"):
        assert number_of(text) is None, text


def test_both_migrations_use_the_released_number_pattern() -> None:
    duck = duck_schema.MIGRATIONS[10].replace("\\\\", "\\")
    assert NUMBER_PATTERN in duck
    assert NUMBER_PATTERN.replace("\\", "\\\\") in ch_schema.MIGRATIONS[7][1]


OLD_VALUES = [("a", "site", "canada"), ("a", "temp", "150"), ("b", "temp", "-2.5"), ("c", "temp", "0x10"),
              ("d", "temp", "1e999"), ("e", "ok", "true")]
EXPECTED = {"a": {"site": "canada", "temp": "150"}, "b": {"temp": "-2.5"}, "c": {"temp": "0x10"},
            "d": {"temp": "1e999"}, "e": {"ok": "true"}}
NUMBERS = {("a", "site"): None, ("a", "temp"): 150.0, ("b", "temp"): -2.5, ("c", "temp"): None,
           ("d", "temp"): None, ("e", "ok"): None}


def _old_duckdb_store(path: Path) -> None:
    """A DuckDB store at schema version 10, the last before typed metadata, holding OLD_VALUES."""
    con = duckdb.connect(str(path), config=duck_schema.CONFIG)
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for version, ddl in enumerate(duck_schema.MIGRATIONS[:10], 1):
        con.execute(ddl)
        con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
    con.execute("INSERT INTO workspaces VALUES (1, 'old', 'hash', now())")
    for inference_id, name, value in OLD_VALUES:
        con.execute("INSERT INTO metadata VALUES (1, ?, ?, ?, now(), md5_number(?))",
                    [inference_id, name, value, inference_id])
    con.close()


def test_a_duckdb_store_made_before_types_keeps_its_strings(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_duckdb_store(path)
    store = DuckDBStore(str(path))
    store.migrate()
    assert store.metadata_of(1, list(EXPECTED)) == EXPECTED
    stored = store._cursor().execute(
        "SELECT inference_id, field_name, field_type, field_number FROM metadata").fetchall()
    assert {(i, f): n for i, f, _, n in stored} == NUMBERS
    assert {t for _, _, t, _ in stored} == {"string"}
    _typed_rows_answer_typed(store)
    store.close()


def test_a_clickhouse_store_made_before_types_keeps_its_strings(chdb_url: Callable[[str], str]) -> None:
    store = open_store(chdb_url("old_types"))
    assert isinstance(store, ClickHouseStore)
    client = store._client()
    client.command(ch_schema.SCHEMA_VERSION_TABLE)
    for version, statements in enumerate(ch_schema.MIGRATIONS[:7], 1):
        for statement in statements:
            client.command(statement.replace("{db}", store._database).replace("{auth}", store._source_auth))
        client.command(f"INSERT INTO schema_version VALUES ({version}, now64(6))")
    for inference_id, name, value in OLD_VALUES:
        client.command("INSERT INTO metadata (ws, inference_id, field_name, field_value, updated_at)"
                       f" VALUES (1, '{inference_id}', '{name}', '{value}', now64(6))")
    store.migrate()
    assert store.metadata_of(1, list(EXPECTED)) == EXPECTED
    stored = client.query("SELECT inference_id, field_name, field_type, field_number FROM metadata FINAL").result_rows
    assert {(i, f): n for i, f, _, n in stored} == NUMBERS
    assert {t for _, _, t, _ in stored} == {"string"}
    _typed_rows_answer_typed(store)
    store.close()


def test_a_duckdb_store_from_before_types_copies_into_clickhouse_as_it_migrates(
        tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    """`inferwatch migrate` reads its source as it is (read-only): an old one's values arrive as
    the migration would have made them."""
    path = tmp_path / "old.duckdb"
    _old_duckdb_store(path)
    target = open_store(chdb_url("copied_old"))
    assert isinstance(target, ClickHouseStore)
    source = open_source(str(path))
    copied = copy_store(source, str(path), target)
    source.close()
    assert copied.metadata == len(OLD_VALUES)
    assert target.metadata_of(1, list(EXPECTED)) == EXPECTED
    stored = target._client().query(
        "SELECT inference_id, field_name, field_type, field_number FROM metadata FINAL").result_rows
    assert {(i, f): n for i, f, _, n in stored} == NUMBERS
    assert {t for _, _, t, _ in stored} == {"string"}
    target.close()


def _typed_rows_answer_typed(store: DuckDBStore | ClickHouseStore) -> None:
    """After the migration, new writes keep their types, and a rewrite replaces the kind too."""
    meta = MetadataRows()
    for name, value in (("temp", 151.5), ("n", 3), ("ok", False), ("site", "150")):
        meta.add(1, "f", name, value, 1_800_000_000_000_000)
    meta.add(1, "a", "temp", 149, 1_800_000_000_000_000)
    store.append(InferenceRows(), meta)
    found = store.metadata_of(1, ["a", "f"])
    assert found == {"a": {"site": "canada", "temp": 149}, "f": {"n": 3, "ok": False, "site": "150", "temp": 151.5}}
    assert type(found["f"]["temp"]) is float and type(found["f"]["n"]) is int
    fields = {f.name: f.types for f in store.metadata_fields(1, 3)}
    assert fields == {"n": ["number"], "ok": ["boolean", "string"], "site": ["string"], "temp": ["number", "string"]}


# id -> temp, as sent: numbers, strings that read as numbers, strings that do not; "none" has no temp.
TEMPS: dict[str, MetaScalar] = {"n150": 150, "f151": 151.5, "s150": "150", "s150f": "150.0", "neg": -2.5,
                                "hot": "hot", "hex": "0x10", "big": 10**20, "tiny": 1e-07, "yes": True}
RANGES = [
    ([("meta.temp[gt]", "150")], {"f151", "big"}),
    ([("meta.temp[gte]", "150")], {"n150", "f151", "s150", "s150f", "big"}),
    ([("meta.temp[gt]", "0"), ("meta.temp[lt]", "151")], {"n150", "s150", "s150f", "tiny"}),
    ([("meta.temp[lte]", "-2.5")], {"neg"}),
    ([("meta.temp[eq]", "150")], {"n150", "s150", "s150f"}),
    ([("meta.temp", "150")], {"n150", "s150"}),  # plain: the text, as always
    ([("meta.temp[eq]", "1e-7")], {"tiny"}),
    ([("meta.temp[eq]", "hot"), ("meta.temp[eq]", "-2.5")], {"hot", "neg"}),
    ([("meta.temp[eq]", "true")], {"yes"}),
    ([("meta.temp[neq]", "150")], {"f151", "neg", "hot", "hex", "big", "tiny", "yes"}),
    ([("meta.temp[neq]", "hot"), ("meta.temp[lt]", "100")], {"neg", "tiny"}),
    ([("meta.temp[gt]", "1e30")], set()),
]


@pytest.mark.parametrize(("params", "expected"), RANGES, ids=[str(p) for p, _ in RANGES])
def test_comparisons_select_the_same_inferences_on_both_stores(
        typed_stores: tuple[Store, Store], params: list[tuple[str, str]], expected: set[str]) -> None:
    filters = parse_filters(params)
    for store in typed_stores:
        page, _ = store.list_inferences(1, filters, None, 100)
        assert {r.inference_id for r in page} == expected, type(store).__name__
        assert store.totals(1, filters).inferences == len(expected)


@pytest.fixture(scope="module")
def typed_stores(tmp_path_factory: pytest.TempPathFactory,
                 chdb_url: Callable[[str], str]) -> Iterator[tuple[Store, Store]]:
    duck: Store = DuckDBStore(str(tmp_path_factory.mktemp("typed") / "typed.duckdb"))
    chdb = open_store(chdb_url("typed"))
    rows, meta = InferenceRows(), MetadataRows()
    for n, inference_id in enumerate([*TEMPS, "none"]):
        _add(rows, random.Random(n), 1, inference_id, 0, BASE_US + n * 1_000_000)
        if inference_id in TEMPS:
            meta.add(1, inference_id, "temp", TEMPS[inference_id], BASE_US)
    for store in (duck, chdb):
        store.migrate()
        store.append(rows, meta)
    yield duck, chdb
    duck.close()
    chdb.close()


TYPED = [
    ([typed_term("temp", "gt", 150)], {"f151", "big"}),
    ([typed_term("temp", "gte", 0), typed_term("temp", "lt", 151)], {"n150", "s150", "s150f", "tiny"}),
    ([typed_term("temp", "eq", 150)], {"n150", "s150", "s150f"}),
    ([typed_term("temp", "eq", "150")], {"n150", "s150"}),  # a string operand compares as text
    ([typed_term("temp", "eq", True)], {"yes"}),
    ([typed_term("temp", "neq", "hot", "string"), typed_term("temp", "lte", -1)], {"neg"}),
]


@pytest.mark.parametrize(("terms", "expected"), TYPED, ids=[str(t) for t, _ in TYPED])
def test_typed_terms_select_the_same_inferences_on_both_stores(
        typed_stores: tuple[Store, Store], terms: list[MetaTerm], expected: set[str]) -> None:
    for store in typed_stores:
        page, _ = store.list_inferences(1, Filters(meta=tuple(terms)), None, 100)
        assert {r.inference_id for r in page} == expected, type(store).__name__


def test_a_rewritten_value_is_compared_as_its_latest_write(tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    """The earlier write's number must not match once a later write replaced it (ClickHouse
    keeps both rows until a merge; FINAL must apply before the comparison)."""
    duck: Store = DuckDBStore(str(tmp_path / "rewrite.duckdb"))
    chdb = open_store(chdb_url("rewrite"))
    rows = InferenceRows()
    for n, inference_id in enumerate(("a", "b")):
        _add(rows, random.Random(n), 1, inference_id, 0, BASE_US + n)
    for store in (duck, chdb):
        store.migrate()
        first = MetadataRows()
        first.add(1, "a", "temp", 200, BASE_US)
        first.add(1, "b", "temp", "cold", BASE_US)
        store.append(rows, first)
        later = MetadataRows()
        later.add(1, "a", "temp", "hot", BASE_US + 10)
        later.add(1, "b", "temp", 50.5, BASE_US + 10)
        store.append(InferenceRows(), later)
        for params, expected in (([("meta.temp[gt]", "100")], set()), ([("meta.temp[lt]", "100")], {"b"}),
                                 ([("meta.temp[eq]", "hot")], {"a"}), ([("meta.temp[neq]", "cold")], {"a", "b"})):
            page, _ = store.list_inferences(1, parse_filters(params), None, 10)
            assert {r.inference_id for r in page} == expected, (type(store).__name__, params)
        assert [p.max for p in store.numeric_figures(1, Filters(), "temp", None, None)] == [50.5]
        store.close()
