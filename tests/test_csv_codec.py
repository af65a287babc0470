"""The CSV codec of aws_sagemaker (extension/src/sagemaker/csv.c) through SQL, and the
request batching arithmetic (plpython/aws_ml/batching.py): whatever the
values, Python's csv module reads back exactly the fields that went in."""
import csv
import io
import sys
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plpython"))

from aws_ml.batching import by_size  # noqa: E402
from aws_ml.errors import AwsMlError  # noqa: E402
from aws_ml.sagemaker import model_output  # noqa: E402

# PostgreSQL text holds any character but NUL; surrogates are not UTF-8.
characters = st.one_of(st.sampled_from(',"\r\n \t\\(){}'),
                       st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
texts = st.one_of(st.none(), st.text(alphabet=characters, max_size=12))
int_arrays = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)), max_size=4))
VALUES = {"text": texts, "int[]": int_arrays}


@st.composite
def tables(draw):
    """(column types, rows): 1-4 rows of one row type of 1-5 text/int[] columns."""
    types = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=5))
    rows = draw(st.lists(st.tuples(*(VALUES[t] for t in types)), min_size=1, max_size=4))
    return types, rows


def fields_of(types, row):
    """The CSV fields the codec promises for row: NULL is an empty field, an
    array one field per element."""
    fields = []
    for type_name, value in zip(types, row):
        if type_name == "int[]" and value is not None:
            fields.extend("" if element is None else str(element) for element in value)
        else:
            fields.append("" if value is None else value)
    return fields


def parse(text):
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture(scope="module")
def conn(cluster, database):
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as connection:
        yield connection


def row_sql(types):
    return "ROW(" + ", ".join(f"%s::{t}" for t in types) + ")"


@settings(max_examples=60, deadline=None)
@given(tables())
def test_csv_rows_read_back_field_for_field(conn, table):
    types, rows = table
    expected = [fields_of(types, row) for row in rows]
    sql = "SELECT aws_sagemaker._csv_rows(ARRAY[" + ", ".join(row_sql(types) for _ in rows) + "])"
    params = [value for row in rows for value in row]
    if any(not fields for fields in expected):
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql, params)
        assert caught.value.diag.sqlstate == "22023"
        return
    lines = conn.execute(sql, params).fetchone()[0]
    assert len(lines) == len(rows)
    for line, fields in zip(lines, expected):
        assert line.endswith("\n")
        assert parse(line) == [fields]


@settings(max_examples=60, deadline=None)
@given(tables())
def test_invoke_endpoint_sends_one_csv_row_per_call(conn, emulator, table):
    """The VARIADIC "any" path: the emulator's recorded request body parses
    back to the arguments' fields, and echo-row-count counts them."""
    types, rows = table
    fields = fields_of(types, rows[0])
    sql = "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, " + \
        ", ".join(f"%s::{t}" for t in types) + ")"
    if not fields:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql, rows[0])
        assert caught.value.diag.sqlstate == "22023"
        return
    assert conn.execute(sql, rows[0]).fetchone()[0] == str(len(fields))
    assert parse(emulator.sagemaker_bodies()[-1]) == [fields]


def test_each_type_in_its_text_form(conn):
    line = conn.execute(
        "SELECT (aws_sagemaker._csv_rows(ARRAY[ROW(1::int, 2.5::real, 10.25::numeric, true, "
        "'2024-02-29'::date, 'a b'::text, ROW(1, 'x')::record::text, '{1.5,NULL,3}'::float8[])]))[1]"
    ).fetchone()[0]
    assert line == '1,2.5,10.25,t,2024-02-29,a b,"(1,x)",1.5,,3\n'


def test_composite_argument_is_one_field_and_unknown_literals_work(conn, emulator):
    assert conn.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, ROW(1, 2), 'x,y', 3)"
                        ).fetchone()[0] == "3"
    assert emulator.sagemaker_bodies()[-1] == '"(1,2)","x,y",3\n'


def test_null_and_empty_rows(conn):
    assert conn.execute("SELECT aws_sagemaker._csv_rows(ARRAY[NULL, 'a']::text[])").fetchone()[0] == [None, "a\n"]
    assert conn.execute("SELECT aws_sagemaker._csv_rows(ARRAY[NULL::int, NULL])").fetchone()[0] == [None, None]
    assert conn.execute("SELECT aws_sagemaker._csv_rows(ARRAY[ROW(NULL, NULL)])").fetchone()[0] == [",\n"]
    # A lone empty field is written "": a blank line would carry no row.
    assert conn.execute("SELECT aws_sagemaker._csv_rows(ARRAY[ROW(NULL::int)])").fetchone()[0] == ['""\n']
    assert conn.execute("SELECT aws_sagemaker._csv_rows('{}'::int[])").fetchone()[0] == []
    assert conn.execute("SELECT aws_sagemaker._csv_rows(NULL::int[])").fetchone()[0] is None


@pytest.mark.parametrize("sql", [
    "SELECT aws_sagemaker._csv_rows('{{1,2},{3,4}}'::int[])",
    "SELECT aws_sagemaker._csv_rows(ARRAY[ROW(1, '{{1,2},{3,4}}'::int[])])",
    "SELECT aws_sagemaker._csv_rows(ARRAY[ROW('{}'::int[])])",
])
def test_multidimensional_arrays_and_rows_without_fields_are_22023(conn, sql):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    assert caught.value.diag.sqlstate == "22023"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=40), st.integers(1, 8), st.integers(60, 200))
def test_by_size_splits_in_order_within_both_limits(sizes, max_items, max_bytes):
    ranges = by_size(sizes, max_items, max_bytes)
    assert [i for start, stop in ranges for i in range(start, stop)] == list(range(len(sizes)))
    for number, (start, stop) in enumerate(ranges):
        assert 0 < stop - start <= max_items
        assert sum(sizes[start:stop]) <= max_bytes
        if number + 1 < len(ranges):  # a request is cut only when the next item does not fit
            assert stop - start == max_items or sum(sizes[start:stop + 1]) > max_bytes


def test_by_size_refuses_an_item_over_the_limit():
    with pytest.raises(AwsMlError) as caught:
        by_size([10, 101, 5], 10, 100)
    assert caught.value.sqlstate == "22023" and caught.value.ordinality == 2


@pytest.fixture(scope="module")
def three_texts(conn):
    conn.execute("CREATE TYPE pg_temp.three AS (a text, b text, c text)")
    return "pg_temp.three"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=characters, max_size=8), min_size=3, max_size=3))
def test_an_answer_of_several_values_casts_to_a_composite_field_for_field(conn, three_texts, fields):
    got = conn.execute(f"SELECT (%s::{three_texts}).*", (model_output(fields),)).fetchone()
    assert list(got) == [field or None for field in fields]  # an empty field is NULL


def test_an_answer_of_one_value_is_that_value():
    assert model_output(["0.25"]) == "0.25"
    assert model_output(["a,b"]) == "a,b"
    assert model_output([]) == ""
