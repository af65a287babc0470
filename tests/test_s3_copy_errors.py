"""The errors of an export's query against COPY (query) TO STDOUT's, in the
same session (tests/test_s3.py's comparison): errors caught inside the query
and raised again, notices before the error, and an error, an export that
works and the error again."""
import re

import pytest

from tests.s3_support import export, new_key, s3, s3_database, s3db  # noqa: F401 (fixtures)
from tests.conftest import REGION, create_database, in_encoding
from tests.s3_support import BUCKET, copy_to_stdout
from tests.test_s3 import assert_reported_as_copy, latin1_database, reported  # noqa: F401 (a fixture)

FUNCTIONS = """
    CREATE OR REPLACE FUNCTION pg_temp.reraised() RETURNS int LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 / 0;
        RETURN 1;
    EXCEPTION WHEN division_by_zero THEN
        BEGIN
            PERFORM pg_catalog.int4in('a much longer statement than the first one, which is caught');
        EXCEPTION WHEN invalid_text_representation THEN
            NULL;
        END;
        RAISE;
    END$$;
    CREATE OR REPLACE FUNCTION pg_temp.reraised_short() RETURNS int LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_catalog.int4in('a much longer statement than the second one, which is raised again');
        RETURN 1;
    EXCEPTION WHEN invalid_text_representation THEN
        BEGIN
            PERFORM 1 / 0;
        EXCEPTION WHEN division_by_zero THEN
            NULL;
        END;
        RAISE;
    END$$;
    CREATE OR REPLACE FUNCTION pg_temp.noisy(n int) RETURNS int LANGUAGE plpgsql AS $$
    BEGIN
        RAISE NOTICE 'row %', n;
        RAISE WARNING 'row % again', n;
        IF n = 3 THEN
            RAISE EXCEPTION 'refused %', n USING DETAIL = E'line one\nline two';
        END IF;
        RETURN n;
    END$$"""

QUERIES = {"caught, a longer error, raised again": "SELECT pg_temp.reraised()",
           "caught, a shorter error, raised again": "SELECT pg_temp.reraised_short()",
           "notices and warnings first": "SELECT pg_temp.noisy(n) FROM generate_series(1, 5) n"}


@pytest.mark.parametrize("query", QUERIES)
def test_an_export_fails_as_copy_to_stdout_when_the_query_caught_errors_first(s3db, s3, query):
    s3db.execute(FUNCTIONS)
    sql = QUERIES[query]
    for _ in range(2):  # and again after an export that works
        assert_reported_as_copy(s3db, lambda: copy_to_stdout(s3db, sql, None), lambda: export(s3db, sql, new_key()))
        assert export(s3db, "SELECT 1", new_key()) == (1, 1, 2)


NESTED = ("SELECT rows_uploaded FROM aws_s3.query_export_to_s3("
          "'SELECT 1 / (n - n) FROM generate_series(1, 2) n', "
          "aws_commons.create_s3_uri('" + BUCKET + "', 'exports/nested', '" + REGION + "'))")


@pytest.mark.parametrize("batch_mode", ["on", "off"])
@pytest.mark.parametrize("query", ["nested export", "failing aws_ml call"])
def test_an_export_of_a_query_calling_aws_s3_or_aws_ml_fails_as_copy_to_stdout(s3db, s3, emulator, query,
                                                                               batch_mode):
    s3db.execute("CREATE EXTENSION IF NOT EXISTS aws_ml")
    s3db.execute("SELECT pg_catalog.set_config('aws_ml.batch_mode', %s, false)", (batch_mode,))
    emulator.set_faults(service="comprehend", error_code="AccessDeniedException", error_status=400, error_every=1)
    sql = {"nested export": NESTED,
           "failing aws_ml call": "SELECT (aws_comprehend.detect_sentiment('I love it ' || n, 'en')).sentiment "
                                  "FROM generate_series(1, 30) n"}[query]
    for _ in range(2):
        assert_reported_as_copy(s3db, lambda: copy_to_stdout(s3db, sql, None), lambda: export(s3db, sql, new_key()))
        assert export(s3db, "SELECT 1", new_key()) == (1, 1, 2)


def test_outside_utf8_an_error_thrown_again_keeps_its_own_non_ascii_context(latin1_database, connect, s3):
    conn = connect(dbname=latin1_database)
    conn.execute(FUNCTIONS.replace("a much longer statement", "a much longer st\u00e4tement"))
    for sql in ("SELECT pg_temp.reraised()", "SELECT pg_temp.reraised_short()"):
        for _ in range(2):
            assert_reported_as_copy(conn, lambda: copy_to_stdout(conn, sql, None), lambda: export(conn, sql, new_key()))
            assert export(conn, "SELECT 1", new_key()) == (1, 1, 2)


# An error caught, then more distinct errors raised and caught than the C
# module keeps the contexts of (copy_errors.c: 16), then the first thrown
# again with RAISE: its own context only, not the internal query and function
# calling the COPY, as COPY's; in the export's query, in a domain's CHECK during
# an import, and under a caller's PL/pgSQL function.
MANY_ERRORS = """
    CREATE OR REPLACE FUNCTION public.many_errors(n int, errors int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
        IF n > 0 THEN
            RETURN true;
        END IF;
        PERFORM 1 / 0;
        RETURN true;
    EXCEPTION WHEN division_by_zero THEN
        FOR i IN 1..errors LOOP
            BEGIN
                IF i % 2 = 0 THEN
                    PERFORM pg_catalog.int4in('even');
                ELSE
                    PERFORM pg_catalog.int4in('odd');
                END IF;
            EXCEPTION WHEN invalid_text_representation THEN
                NULL;
            END;
        END LOOP;
        RAISE;
    END$$;
    CREATE OR REPLACE FUNCTION pg_temp.export_rows(query text) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        RETURN (aws_s3.query_export_to_s3(query, aws_commons.create_s3_uri('""" + BUCKET + """', 'exports/wrapped',
                                          '""" + REGION + """'))).rows_uploaded;
    END$$"""


@pytest.mark.parametrize("errors", [15, 16, 17, 40])
def test_an_error_thrown_again_after_many_others_keeps_only_its_own_context(s3db, s3, errors):
    s3db.execute(MANY_ERRORS)
    s3db.execute(f"""
        DROP TABLE IF EXISTS checked;
        DROP DOMAIN IF EXISTS checked_int;
        CREATE DOMAIN checked_int AS int CHECK (public.many_errors(VALUE, {errors}));
        CREATE TABLE checked (n checked_int)""")
    sql = f"SELECT public.many_errors(0, {errors})"
    copy = assert_reported_as_copy(s3db, lambda: copy_to_stdout(s3db, sql, None), lambda: export(s3db, sql, new_key()))
    wrapped = reported(s3db, lambda: s3db.execute("SELECT pg_temp.export_rows(%s)", (sql,)))
    assert (wrapped.sqlstate, wrapped.message_detail) == (copy.sqlstate, copy.context)
    assert re.fullmatch(r"PL/pgSQL function pg_temp_\d+\.export_rows\(text\) line 3 at RETURN", wrapped.context)
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n-1\n")

    def copy_from_stdin():
        with s3db.cursor() as cursor, cursor.copy("COPY checked FROM STDIN") as copy:
            copy.write(b"1\n-1\n")
    copy = assert_reported_as_copy(s3db, copy_from_stdin, lambda: s3db.execute(
        "SELECT aws_s3.table_import_from_s3('checked', '', '', aws_commons.create_s3_uri(%s, %s, %s))",
        (BUCKET, key, REGION)))
    assert copy.context.endswith('COPY checked, line 2, column n: "-1"')


@pytest.mark.parametrize("encoding", ["LATIN1", "EUC_JP"])
def test_outside_utf8_a_non_ascii_detail_of_the_copy_reads_as_copy_s(cluster, connect, s3, encoding):
    """The DETAIL of an error of the export's query, of an import's CHECK
    (its failing row) and of its trigger, in the database's encoding, with
    the context after it, as COPY's; message and HINT too."""
    conn = connect(dbname=create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE",
                                          options=in_encoding(encoding)), client_encoding="UTF8")
    conn.execute("""
        CREATE FUNCTION refuses(n int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'refus\u00e9 %', n USING DETAIL = 'd\u00e9tail', HINT = 'h\u00efnt';
        END$$;
        CREATE TABLE checked (n int CHECK (n > 0), t text);
        CREATE FUNCTION checked_refuses() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.n = 13 THEN
                PERFORM refuses(NEW.n);
            END IF;
            RETURN NEW;
        END$$;
        CREATE TRIGGER refuses BEFORE INSERT ON checked FOR EACH ROW EXECUTE FUNCTION checked_refuses()""")
    sql = "SELECT refuses(n) FROM generate_series(1, 2) n"
    copy = assert_reported_as_copy(conn, lambda: copy_to_stdout(conn, sql, None), lambda: export(conn, sql, new_key()))
    assert (copy.message_primary, copy.message_detail, copy.message_hint) == ("refus\u00e9 1", "d\u00e9tail",
                                                                               "h\u00efnt")
    for data in ("-1\tcaf\u00e9\n", "13\tcaf\u00e9\n"):
        key = new_key()
        s3.put_object(Bucket=BUCKET, Key=key, Body=data.encode(encoding))

        def copy_from_stdin():
            with conn.cursor() as cursor, cursor.copy("COPY checked FROM STDIN") as copy:
                copy.write(data.encode())
        copy = assert_reported_as_copy(conn, copy_from_stdin, lambda: conn.execute(
            "SELECT aws_s3.table_import_from_s3('checked', '', %s, aws_commons.create_s3_uri(%s, %s, %s))",
            (f"ENCODING '{encoding}'", BUCKET, key, REGION)))
        assert "caf\u00e9" in (copy.message_detail or "") + copy.context
