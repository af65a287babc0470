"""aws_s3 against the emulator's S3 (moto): exports byte for byte as COPY
TO STDOUT writes, files split at aws_s3.max_file_size, imports (gzip too),
errors, cancel, the settings lock and privileges."""
import gzip
import itertools
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ACCESS_KEY_ID, REGION, counter, create_database, in_encoding, stop_when
from tests.s3_support import (BUCKET, copy_to_stdout, export, new_key, object_bytes, s3,  # noqa: F401 (fixtures)
                              s3_database, s3db, sql_error, transfer_process)

ROWS_SQL = ("SELECT n, CASE WHEN n % 7 = 0 THEN NULL ELSE 'text ' || n END AS t, "
            "'a,b \"quoted\"' || E'\\n' || 'next line|' || n AS tricky, n * 1.5 AS x "
            "FROM generate_series(1, 200) n")


@pytest.mark.parametrize("options", [
    None,
    "format text",
    "format text, delimiter '|', null 'NIL', header true",
    "format csv",
    "format csv, header true",
    "format csv, delimiter ';', null 'NULL', quote '''', escape '\\', force_quote (t)",
    "format csv, header, force_quote *",
])
def test_an_export_is_what_copy_to_stdout_writes(s3db, s3, options):
    key = new_key()
    expected = copy_to_stdout(s3db, ROWS_SQL, options)
    assert export(s3db, ROWS_SQL, key, options) == (200, 1, len(expected))
    assert object_bytes(s3, key) == expected


def test_the_alternate_form_with_bucket_path_and_region(s3db, s3):
    key = new_key()
    got = s3db.execute("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1, 2', %s, %s, %s, 'format csv')",
                       (BUCKET, key, REGION)).fetchone()
    assert got == (1, 1, 4)
    assert object_bytes(s3, key) == b"1,2\n"


def test_a_large_export_goes_in_parts_and_the_query_may_call_aws_ml(s3db, s3, emulator):
    key = new_key()
    sql = "SELECT n, repeat('x', 200) FROM generate_series(1, 100000) n"
    expected = copy_to_stdout(s3db, sql, None)
    assert export(s3db, sql, key) == (100000, 1, len(expected))
    assert object_bytes(s3, key) == expected
    parts = -(-len(expected) // (8 * 1024 * 1024))
    s3_counters = emulator.counters()["s3"]
    # CreateMultipartUpload and CompleteMultipartUpload; a PUT per part
    assert (counter({"s3": s3_counters}, "s3", "POST"), counter({"s3": s3_counters}, "s3", "PUT")) == (2, parts)


def test_a_query_calling_pl_python_functions_runs_in_batch_mode(s3db, s3, emulator):
    s3db.execute("CREATE EXTENSION IF NOT EXISTS aws_ml")
    key = new_key()
    sql = ("SELECT n, (aws_comprehend.detect_sentiment('I love this product, number ' || n, 'en')).sentiment "
           "FROM generate_series(1, 60) n")
    assert export(s3db, sql, key, "format csv")[:2] == (60, 1)
    assert object_bytes(s3, key) == b"".join(f"{n},POSITIVE\n".encode() for n in range(1, 61))
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment") == 3  # 25 documents a request


@pytest.mark.parametrize("options", ["format csv, header true", "format text, header true",
                                     "format csv, escape '\\', header true"])
def test_files_split_at_max_file_size_between_records(s3db, s3, options):
    s3db.execute("SET aws_s3.max_file_size = '1kB'")
    key = new_key(".csv")
    expected = copy_to_stdout(s3db, ROWS_SQL, options)
    rows, files, size = export(s3db, ROWS_SQL, key, options)
    names = [key] + [f"{key}_part{n}" for n in range(2, files + 1)]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(names)
    contents = [object_bytes(s3, name) for name in names]
    header = expected[:expected.index(b"\n") + 1]
    assert all(content.startswith(header) for content in contents)
    # every file but the last goes past 1 kB by less than a record, and ends with one
    assert all(1024 <= len(content) < 1024 + 100 for content in contents[:-1])
    assert header + b"".join(content[len(header):] for content in contents) == expected
    assert (rows, size) == (200, sum(len(content) for content in contents))
    table = f"t_{uuid.uuid4().hex[:8]}"
    s3db.execute(f"CREATE TABLE {table} (n int, t text, tricky text, x numeric)")
    for name in names:
        s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', %s, %s, %s, %s)",
                     (table, options, BUCKET, name, REGION))
    assert s3db.execute(f"SELECT count(*), count(DISTINCT tricky) FROM {table}").fetchone() == (200, 200)


def test_a_round_trip_gives_the_same_rows(s3db, s3):
    key = new_key()
    s3db.execute("CREATE TABLE IF NOT EXISTS trip_source AS " + ROWS_SQL)
    s3db.execute("CREATE TABLE IF NOT EXISTS trip_target (LIKE trip_source)")
    export(s3db, "SELECT * FROM trip_source", key, "format csv, header true")
    summary = s3db.execute("SELECT aws_s3.table_import_from_s3('trip_target', '', 'format csv, header true', "
                           "aws_commons.create_s3_uri(%s, %s, %s))", (BUCKET, key, REGION)).fetchone()[0]
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    assert summary == f'200 rows imported into relation "trip_target" from file {key} of {size} bytes'
    assert s3db.execute("SELECT count(*) FROM (SELECT * FROM trip_source EXCEPT ALL SELECT * FROM trip_target) d "
                        ).fetchone() == (0,)
    assert s3db.execute("SELECT count(*) FROM trip_target").fetchone() == (200,)


def test_an_import_of_some_columns(s3db, s3):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1|one\n2|two\n")
    s3db.execute("CREATE TABLE some_columns (id int, label text, extra text DEFAULT 'default')")
    s3db.execute("SELECT aws_s3.table_import_from_s3('some_columns', 'id, label', 'delimiter ''|''', %s, %s, %s)",
                 (BUCKET, key, REGION))
    assert s3db.execute("SELECT * FROM some_columns ORDER BY id").fetchall() == \
        [(1, "one", "default"), (2, "two", "default")]


def test_a_gzip_encoded_object_is_decompressed(s3db, s3):
    key = new_key(".gz")
    data = b"".join(f"{n},row {n}\n".encode() for n in range(1, 5001))
    packed = gzip.compress(data)
    s3.put_object(Bucket=BUCKET, Key=key, Body=packed, ContentEncoding="gzip")
    s3db.execute("CREATE TABLE gzipped (n int, label text)")
    summary = s3db.execute("SELECT aws_s3.table_import_from_s3('gzipped', '', 'format csv', %s, %s, %s)",
                           (BUCKET, key, REGION)).fetchone()[0]
    assert summary == f'5000 rows imported into relation "gzipped" from file {key} of {len(packed)} bytes'
    assert s3db.execute("SELECT count(*), sum(n), max(label) FROM gzipped").fetchone() == (5000, 12502500, "row 999")


def test_kms_key_asks_for_sse_kms(s3db, s3):
    key = new_key()
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    export(s3db, "SELECT 1", key, None, kms_key=kms)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms)


def test_credentials_given_to_an_import_sign_its_requests(s3db, s3, emulator):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"7\n")
    s3db.execute("CREATE TABLE given (n int)")
    emulator.reset()
    s3db.execute("SELECT aws_s3.table_import_from_s3('given', '', '', %s, %s, %s, 'AKIAGIVENBYTHECALL01', "
                 "'given-secret', NULL)", (BUCKET, key, REGION))
    s3db.execute("SELECT aws_s3.table_import_from_s3('given', '', '', aws_commons.create_s3_uri(%s, %s, %s), "
                 "aws_commons.create_aws_credentials('AKIAGIVENBYTHECALL02', 'other-secret'))", (BUCKET, key, REGION))
    assert emulator.counters()["s3"]["GET"]["access_key_ids"] == {"AKIAGIVENBYTHECALL01": 1,
                                                                 "AKIAGIVENBYTHECALL02": 1}
    assert s3db.execute("SELECT count(*) FROM given").fetchone() == (2,)
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3('given', '', '', %s, %s, %s, 'AKIAONLYTHEKEY', NULL)",
                     (BUCKET, key, REGION))
    assert diag.sqlstate == "22023" and "secret_key" in diag.message_primary


def test_errors_have_their_sqlstate(s3db, s3, emulator):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1,x\nnot a number,y\n")
    s3db.execute("CREATE TABLE IF NOT EXISTS numbers (n int, label text)")
    cases = [
        ("SELECT aws_s3.query_export_to_s3('SELECT 1', 'no-such-bucket-here', 'k')", "42704", "NoSuchBucket"),
        ("SELECT aws_s3.table_import_from_s3('numbers', '', 'format csv', %(b)s, 'no/such/key', %(r)s)",
         "42704", "NoSuchKey"),
        ("SELECT aws_s3.query_export_to_s3('SELECT 1', %(b)s, 'k', options := 'format xml')", "22023", None),
        ("SELECT aws_s3.query_export_to_s3('SELECT 1', %(b)s, 'k', options := 'no_such_option 1')", "42601", None),
        ("SELECT aws_s3.query_export_to_s3('SELECT * FROM no_such_table', %(b)s, 'k')", "42P01", None),
        ("SELECT aws_s3.query_export_to_s3(NULL, %(b)s, 'k')", "22004", None),
        ("SELECT aws_s3.query_export_to_s3('SELECT 1', NULL, 'k')", "22004", None),
        ("SELECT aws_s3.table_import_from_s3('numbers', '', 'format csv', %(b)s, %(k)s, %(r)s)", "22P02", None),
    ]
    for sql, sqlstate, aws_code in cases:
        diag = sql_error(s3db, sql, {"b": BUCKET, "k": key, "r": REGION})
        assert diag.sqlstate == sqlstate, (sql, diag.message_primary)
        if aws_code:
            assert aws_code in diag.message_detail and "S3" in diag.message_primary and diag.message_hint
    # COPY's own report names the line
    diag = sql_error(s3db, cases[-1][0], {"b": BUCKET, "k": key, "r": REGION})
    assert "COPY numbers, line 2, column n" in diag.message_detail
    assert s3db.execute("SELECT count(*) FROM numbers").fetchone() == (0,)
    emulator.set_faults(service="s3", error_code="AccessDenied", error_status=403, error_every=1)
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3('SELECT 1', %s, %s)", (BUCKET, new_key()))
    assert diag.sqlstate == "42501" and "aws_s3.role_arn" in diag.message_hint


# The errors COPY's own report is compared with: raised in the query an
# export runs, at a depth of nested functions; and in a line of an import.
QUERY_FAILURES = {"division": "SELECT 1 / (n - n) FROM generate_series(1, 2) n",
                  "cast": "SELECT (n || 'x')::int FROM generate_series(1, 2) n",
                  "raise": "SELECT copy_failure(n) FROM generate_series(1, 2) n"}
LINE_FAILURES = {"not a number": b"x", "check": b"-1", "not null": b"\\N", "trigger": b"13"}


def reported(conn, run):
    """The diagnostics of the error run raises."""
    with pytest.raises(psycopg.Error) as caught:
        run()
    return caught.value.diag


def assert_reported_as_copy(conn, run_copy, run_aws_s3):
    """aws_s3's error has COPY's SQLSTATE, message and DETAIL, with COPY's
    CONTEXT at the end of DETAIL, and no CONTEXT of its own (the caller's
    only: none here). Returns COPY's."""
    copy, aws_s3 = reported(conn, run_copy), reported(conn, run_aws_s3)
    assert (aws_s3.sqlstate, aws_s3.message_primary, aws_s3.message_detail, aws_s3.context) == (
        copy.sqlstate, copy.message_primary,
        "\n".join(part for part in (copy.message_detail, copy.context) if part) or None, None)
    return copy


@pytest.fixture
def failing_copies(s3db):
    s3db.execute("""
        CREATE OR REPLACE FUNCTION copy_failure(n int) RETURNS int LANGUAGE plpgsql AS
            $$BEGIN RAISE EXCEPTION 'refused %', n USING DETAIL = 'a detail of its own'; END$$;
        DROP TABLE IF EXISTS copy_target;
        CREATE TABLE copy_target (n int NOT NULL CHECK (n > 0));
        CREATE OR REPLACE FUNCTION copy_target_refuses() RETURNS trigger LANGUAGE plpgsql AS
            $$BEGIN IF NEW.n = 13 THEN RAISE EXCEPTION 'no 13' USING HINT = 'not thirteen'; END IF;
            RETURN NEW; END$$;
        CREATE TRIGGER refuses BEFORE INSERT ON copy_target FOR EACH ROW EXECUTE FUNCTION copy_target_refuses()""")
    return s3db


def nested(sql, depth):
    """sql run inside depth SQL functions, each calling the next."""
    for level in range(depth):
        sql = f"SELECT * FROM pg_temp.nested_{level}()"
    return sql


@pytest.mark.parametrize("failure, depth", list(itertools.product(QUERY_FAILURES, range(3))))
def test_an_export_fails_with_the_error_copy_to_stdout_gives(failing_copies, s3, failure, depth):
    conn = failing_copies
    sql = QUERY_FAILURES[failure]
    for level in range(depth):
        conn.execute(f"CREATE OR REPLACE FUNCTION pg_temp.nested_{level}() RETURNS SETOF int LANGUAGE sql "
                     f"AS $$ {nested(QUERY_FAILURES[failure], level)} $$")
    sql = nested(sql, depth)
    copy = assert_reported_as_copy(conn, lambda: copy_to_stdout(conn, sql, None),
                                   lambda: export(conn, sql, new_key()))
    assert (copy.context or "").count('SQL function "nested_') == depth


@pytest.mark.parametrize("failure, line", list(itertools.product(LINE_FAILURES, (1, 3))))
def test_an_import_fails_with_the_error_copy_from_stdin_gives(failing_copies, s3, failure, line):
    conn = failing_copies
    data = b"".join((LINE_FAILURES[failure] if number == line else b"%d" % number) + b"\n" for number in range(1, 4))
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def copy_from_stdin():
        with conn.cursor() as cursor, cursor.copy("COPY copy_target FROM STDIN") as copy:
            copy.write(data)
    copy = assert_reported_as_copy(conn, copy_from_stdin, lambda: conn.execute(
        "SELECT aws_s3.table_import_from_s3('copy_target', '', '', aws_commons.create_s3_uri(%s, %s, %s))",
        (BUCKET, key, REGION)))
    assert f"COPY copy_target, line {line}" in copy.context
    assert conn.execute("SELECT count(*) FROM copy_target").fetchone() == (0,)


@pytest.mark.parametrize("sql", [
    "SELECT 1) TO '/tmp/aws_s3_escape' WITH (format text",
    "SELECT 1) TO PROGRAM 'true' --",
    "SELECT 1) TO STDOUT; SELECT (1",
])
def test_the_query_cannot_reach_past_its_copy(s3db, sql):
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s)", (sql, BUCKET, new_key()))
    assert diag.sqlstate in ("22023", "42601"), diag.message_primary


def test_the_copy_functions_do_nothing_without_their_transfer_token(s3db):
    s3db.execute("CREATE TABLE IF NOT EXISTS numbers (n int, label text)")
    # a failed import leaves its pipe behind until the transaction ends; no one else can use it
    s3db.execute("BEGIN")
    s3db.execute("SAVEPOINT s")
    sql_error(s3db, "SELECT aws_s3.table_import_from_s3('numbers', '', '', %s, 'no/such/key', %s)", (BUCKET, REGION))
    s3db.execute("ROLLBACK TO s")
    for sql in ["SELECT aws_s3._copy_query_to_pipe('SELECT 1', NULL, NULL)",
                "SELECT aws_s3._copy_query_to_pipe('SELECT 1', NULL, 12345)",
                "SELECT aws_s3._copy_pipe_to_table('numbers', NULL, NULL, 0)",
                "SELECT aws_s3._copy_pipe_to_table('numbers', NULL, NULL, -1)"]:
        s3db.execute("SAVEPOINT s")
        diag = sql_error(s3db, sql)
        assert diag.sqlstate == "55000" and "no S3 transfer" in diag.message_primary
        s3db.execute("ROLLBACK TO s")
    s3db.execute("ROLLBACK")


# Found by attacking aws_s3: each crashed, aborted or hung the server when
# the GIL was released for the whole COPY.
PLPGSQL_EXPORT = """CREATE OR REPLACE FUNCTION export_rows(k text) RETURNS bigint LANGUAGE plpgsql AS
$$BEGIN RETURN (aws_s3.query_export_to_s3('SELECT 1', '%s', k)).rows_uploaded; END$$""" % BUCKET
SET_CLAUSE = "CREATE OR REPLACE FUNCTION with_set() RETURNS int LANGUAGE sql SET search_path = public AS 'SELECT 1'"


def test_an_export_whose_query_exports_again(s3db, s3):
    s3db.execute(PLPGSQL_EXPORT)
    s3db.execute(SET_CLAUSE)
    inner = new_key()
    # the function's call info was made before the export, in the same statement
    got = s3db.execute("SELECT export_rows(%s) UNION ALL SELECT rows_uploaded FROM aws_s3.query_export_to_s3("
                       "%s, %s, %s)", (new_key(), f"SELECT export_rows('{inner}')", BUCKET, new_key())).fetchall()
    assert got == [(1,), (1,)]
    assert object_bytes(s3, inner) == b"1\n"
    # nested, over a full pipe, with a function that has a SET clause
    outer = new_key()
    got = s3db.execute("SELECT * FROM aws_s3.query_export_to_s3(%s, %s, %s)", (
        f"SELECT (SELECT rows_uploaded FROM aws_s3.query_export_to_s3('SELECT with_set()', '{BUCKET}', "
        f"'{new_key()}')), repeat('x', 1000) FROM generate_series(1, 5000)", BUCKET, outer)).fetchone()
    assert got[:2] == (5000, 1) and got[2] == len(object_bytes(s3, outer)) == 5000 * 1003


def test_an_export_of_a_cursor_that_exports(s3db, s3):
    s3db.execute("CREATE OR REPLACE FUNCTION fetch_c() RETURNS bigint LANGUAGE plpgsql AS "
                 "$$DECLARE cur refcursor := 'c'; r bigint; BEGIN FETCH cur INTO r; RETURN r; END$$")
    s3db.execute("BEGIN")
    s3db.execute(f"DECLARE c CURSOR FOR SELECT (aws_s3.query_export_to_s3('SELECT 1', '{BUCKET}', "
                 f"'{new_key()}' || n)).rows_uploaded FROM generate_series(1, 3) n")
    key = new_key()
    assert export(s3db, "SELECT fetch_c()", key) == (1, 1, 2)
    s3db.execute("COMMIT")
    assert object_bytes(s3, key) == b"1\n"


def test_an_import_whose_trigger_imports(s3db, s3):
    outer_key, inner_key = new_key(), new_key()
    s3.put_object(Bucket=BUCKET, Key=outer_key, Body=b"".join(b"%d\n" % n for n in range(1, 4)))
    s3.put_object(Bucket=BUCKET, Key=inner_key, Body=b"100\n")
    s3db.execute("CREATE TABLE IF NOT EXISTS imported_outer (n int)")
    s3db.execute("CREATE TABLE IF NOT EXISTS imported_inner (n int)")
    s3db.execute(f"""CREATE OR REPLACE FUNCTION import_more() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM aws_s3.table_import_from_s3('imported_inner', '', '', '{BUCKET}', '{inner_key}', '{REGION}');
        RETURN NEW; END $$""")
    s3db.execute("CREATE TRIGGER import_more BEFORE INSERT ON imported_outer FOR EACH ROW EXECUTE FUNCTION import_more()")
    s3db.execute("SET statement_timeout = '20s'")
    s3db.execute("SELECT aws_s3.table_import_from_s3('imported_outer', '', '', %s, %s, %s)",
                 (BUCKET, outer_key, REGION))
    assert s3db.execute("SELECT count(*), sum(n) FROM imported_outer").fetchone() == (3, 6)
    assert s3db.execute("SELECT count(*), sum(n) FROM imported_inner").fetchone() == (3, 300)


def open_uploads(s3):
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_a_cancelled_export_leaves_no_object_and_no_upload(s3db, s3, emulator, connect):
    key = new_key()
    # the second part holds the 'late' rows: its upload hangs
    emulator.set_faults(service="s3", hang_seconds=30, body_contains="late")
    pid = s3db.execute("SELECT pg_backend_pid()").fetchone()[0]
    # cancelled once the second part (UploadPart, a PUT) hangs
    timer = stop_when(lambda: connect(dbname=s3db.info.dbname), pid,
                      lambda: counter(emulator.counters(), "s3", "PUT") >= 2, "the second part's upload")
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            export(s3db, "SELECT n, CASE WHEN n > 60000 THEN 'late' ELSE 'early' END || repeat('x', 200) "
                         "FROM generate_series(1, 100000) n", key)
    finally:
        timer.join()
    assert time.monotonic() - started < 30 / 3  # stopped early, not after the hang
    assert counter(emulator.counters(), "s3", "POST") == 1  # the multipart upload was begun
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0
    assert [upload for upload in open_uploads(s3) if upload["Key"] == key] == []


@pytest.mark.slow
def test_the_cleanup_of_a_failed_export_is_bounded(s3db, s3, emulator):
    """S3 does not answer the cleanup (AbortMultipartUpload, a DELETE): the
    export's own error still reaches SQL within the cleanup's 10 s, after a
    WARNING that names the upload left open."""
    key = new_key()
    emulator.set_faults(service="s3", hang_seconds=60, operation="DELETE")
    warnings = []
    s3db.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
    started = time.monotonic()
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s)",
                     ("SELECT n, repeat('x', 200), 1 / (100000 - n) FROM generate_series(1, 100000) n", BUCKET, key))
    assert time.monotonic() - started < 30
    assert diag.sqlstate == "22012"
    [upload] = [upload for upload in open_uploads(s3) if upload["Key"] == key]
    assert warnings == [f"aws_s3: could not remove the multipart upload {upload['UploadId']} of "
                        f"s3://{BUCKET}/{key} of the failed export"]
    emulator.clear_faults()
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])


def test_a_failed_export_removes_its_finished_files(s3db, s3):
    s3db.execute("SET aws_s3.max_file_size = '1kB'")
    key = new_key()
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s)",
                     ("SELECT n, repeat('x', 100), 1 / (300 - n) FROM generate_series(1, 400) n", BUCKET, key))
    assert diag.sqlstate == "22012"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0


def test_settings_are_locked_and_privileges_follow_aws_ml(s3_database, cluster, login_role, connect, s3):
    tenant = login_role()
    conn = connect(tenant, dbname=s3_database)
    diag = sql_error(conn, "SELECT aws_s3.query_export_to_s3('SELECT 1', %s, %s)", (BUCKET, new_key()))
    assert diag.sqlstate == "42501"
    admin = connect(dbname=s3_database)
    admin.execute(f"GRANT aws_s3 TO {tenant}")
    admin.execute("CREATE TABLE IF NOT EXISTS secret_table (n int)")
    conn = connect(tenant, dbname=s3_database)
    assert export(conn, "SELECT 41 + 1", new_key())[0] == 1
    for setting in ("aws_s3.endpoint_url", "aws_s3.role_arn"):
        # once the module is loaded, PostgreSQL refuses the SET itself
        diag = sql_error(conn, f"SET {setting} = 'http://127.0.0.1:9'")
        assert diag.sqlstate == "42501"
        # before, the placeholder takes it, and the session's calls are refused
        early = connect(tenant, dbname=s3_database)
        early.execute(f"SET {setting} = ''")
        diag = sql_error(early, "SELECT aws_s3.query_export_to_s3('SELECT 1', %s, %s)", (BUCKET, new_key()))
        assert diag.sqlstate == "42501" and setting in diag.message_primary
    # the query runs as the caller
    diag = sql_error(conn, "SELECT aws_s3.query_export_to_s3('SELECT * FROM secret_table', %s, %s)",
                     (BUCKET, new_key()))
    assert diag.sqlstate == "42501"
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    diag = sql_error(conn, "SELECT aws_s3.table_import_from_s3('secret_table', '', '', %s, %s, %s)",
                     (BUCKET, key, REGION))
    assert diag.sqlstate == "42501"
    # a connection option for a locked setting refuses every call of the session
    refused = psycopg.connect(cluster.conninfo(s3_database, tenant), autocommit=True,
                              options="-c aws_s3.endpoint_url=http://127.0.0.1:9")
    try:
        diag = sql_error(refused, "SELECT aws_s3.query_export_to_s3('SELECT 1', %s, %s)", (BUCKET, new_key()))
        assert diag.sqlstate == "42501" and "aws_s3.endpoint_url" in diag.message_primary
    finally:
        refused.close()


def test_the_base_credentials_sign_by_default(s3db, emulator):
    export(s3db, "SELECT 1", new_key())
    assert emulator.counters()["s3"]["PUT"]["access_key_ids"] == {ACCESS_KEY_ID: 1}


def rss_bytes(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


@pytest.mark.slow
def test_memory_stays_flat_while_exporting_1_gb(s3db, s3):
    """In the backend and in its transfer process."""
    pid = s3db.execute("SELECT pg_backend_pid()").fetchone()[0]
    export(s3db, "SELECT repeat('x', 1023) FROM generate_series(1, 20000)", new_key())  # warmed up: 20 MB
    processes = (pid, transfer_process(pid))
    baselines = [rss_bytes(each) for each in processes]
    samples, done = [], threading.Event()

    def sample():
        while not done.wait(0.1):
            samples.append([rss_bytes(each) for each in processes])
    sampler = threading.Thread(target=sample)
    sampler.start()
    key = new_key()
    try:
        assert export(s3db, "SELECT repeat('x', 1023) FROM generate_series(1, 1048576)", key) == (1048576, 1, 1 << 30)
    finally:
        done.set()
        sampler.join()
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 1 << 30
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert len(samples) > 10
    # a part being uploaded, the next one filling, the pipe: not the gigabyte
    for baseline, peak in zip(baselines, map(max, zip(*samples))):
        assert peak - baseline < 48 * 1024 * 1024, (baselines, peak)


@pytest.mark.parametrize("sql, sqlstate", [("SELECT 1 / 0", "22012"), ("SELECT FROM WHERE", "42601")])
def test_an_export_that_fails_at_once_writes_nothing(s3db, s3, emulator, sql, sqlstate):
    key = new_key()
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s)", (sql, BUCKET, key))
    assert diag.sqlstate == sqlstate
    assert emulator.counters().get("s3", {}) == {}  # not even an empty object, then deleted
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0


def test_gzip_members_one_after_another_and_a_truncated_object(s3db, s3):
    s3db.execute("CREATE TABLE IF NOT EXISTS members (n int)")
    key = new_key(".gz")
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b"1\n2\n") + gzip.compress(b"3\n4\n"),
                  ContentEncoding="gzip")
    s3db.execute("SELECT aws_s3.table_import_from_s3('members', '', '', %s, %s, %s)", (BUCKET, key, REGION))
    assert s3db.execute("SELECT array_agg(n ORDER BY n) FROM members").fetchone() == ([1, 2, 3, 4],)
    whole = gzip.compress(b"".join(b"%d\n" % n for n in range(100000)))
    for body in (whole[:len(whole) // 2], b"1\n2\n"):
        key = new_key(".gz")
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentEncoding="gzip")
        diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3('members', '', '', %s, %s, %s)",
                         (BUCKET, key, REGION))
        assert diag.sqlstate == "22023" and "Content-Encoding gzip" in diag.message_primary
    assert s3db.execute("SELECT count(*) FROM members").fetchone() == (4,)


@pytest.mark.slow  # a hundredfold inflation
def test_a_gzip_object_that_inflates_a_hundredfold_keeps_memory_flat(s3db, s3):
    line = b"x" * 1_000_000 + b"\n"
    key = new_key(".gz")
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(line * 200, 9), ContentEncoding="gzip")
    s3db.execute("CREATE TABLE IF NOT EXISTS inflated (t text)")
    # the session's first import, which loads what any import needs, before the baseline
    small = new_key(".gz")
    s3.put_object(Bucket=BUCKET, Key=small, Body=gzip.compress(line, 9), ContentEncoding="gzip")
    s3db.execute("SELECT aws_s3.table_import_from_s3('inflated', '', '', %s, %s, %s)", (BUCKET, small, REGION))
    s3db.execute("TRUNCATE inflated")
    pid = s3db.execute("SELECT pg_backend_pid()").fetchone()[0]
    baseline = rss_bytes(pid, "RssAnon")  # not the shared buffers COPY fills
    samples, done = [], threading.Event()

    def sample():
        while not done.wait(0.02):
            samples.append(rss_bytes(pid, "RssAnon"))
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        s3db.execute("SELECT aws_s3.table_import_from_s3('inflated', '', '', %s, %s, %s)", (BUCKET, key, REGION))
    finally:
        done.set()
        sampler.join()
    assert s3db.execute("SELECT count(*), min(length(t)) FROM inflated").fetchone() == (200, 1_000_000)
    # 200 MB came out of a 200 kB object, a megabyte at a time
    assert max(samples) - baseline < 48 * 1024 * 1024, (baseline, max(samples))


def test_hostile_arguments_are_refused_without_echoing_secrets(s3db):
    s3db.execute("CREATE TABLE IF NOT EXISTS numbers (n int, label text)")
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3('SELECT 1', 'bkt', 'k', 'evil.com/x')")
    assert diag.sqlstate == "22023" and "region" in diag.message_primary
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3('numbers', '', '', %s, 'k', %s, 'AKIAHOSTILE', "
                           "%s, NULL)", (BUCKET, REGION, "tok-secret\nXYZ"))
    assert diag.sqlstate == "22023" and "tok-secret" not in str(diag.message_primary) + str(diag.message_detail)
    diag = sql_error(s3db, "SET aws_s3.max_file_size = '100GB'")
    assert diag.sqlstate == "22023"


def test_an_encoding_whose_characters_may_hold_a_backslash_is_not_split(s3db, s3):
    s3db.execute("SET aws_s3.max_file_size = '1kB'")
    sql = ("SELECT 1, repeat('p', 1100) || ',ソ' UNION ALL SELECT 2, E'first half\\nsecond half' "
           "UNION ALL SELECT 3, 'z'")
    options = "format csv, escape '\\', encoding 'SJIS'"
    key = new_key()
    expected = copy_to_stdout(s3db, sql, options)
    assert export(s3db, sql, key, options) == (3, 1, len(expected))
    assert object_bytes(s3, key) == expected


def test_notices_the_query_raises_reach_the_client_and_not_the_object(s3db, s3):
    s3db.execute("CREATE OR REPLACE FUNCTION noisy(n int) RETURNS int LANGUAGE plpgsql AS "
                 "$$BEGIN RAISE NOTICE 'row %', n; RETURN n; END$$")
    notices = []
    s3db.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    key = new_key()
    assert export(s3db, "SELECT noisy(n) FROM generate_series(1, 3) n", key) == (3, 1, 6)
    assert object_bytes(s3, key) == b"1\n2\n3\n"
    assert notices == ["row 1", "row 2", "row 3"]
    # the session's protocol is whole afterwards
    assert s3db.execute("SELECT 41 + 1").fetchone() == (42,)


@pytest.fixture(scope="module")
def latin1_database(cluster):
    return create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE", options=in_encoding("LATIN1"))


def test_errors_with_non_ascii_text_outside_utf8_do_not_break_python(latin1_database, connect, s3, emulator):
    """PL/Python reads an error's texts as UTF-8: a LATIN1 é in one left it
    broken, and the next error crashed the server."""
    conn = connect(dbname=latin1_database)
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b'1,"caf\xe9\n')
    conn.execute("CREATE TABLE latin (n int, t text)")
    for sql, sqlstate in [("SELECT * FROM aws_s3.query_export_to_s3('SELECT chr(233)::int', %(b)s, 'x')", "22P02"),
                          ("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1/0', %(b)s, 'x')", "22012"),
                          ("SELECT aws_s3.table_import_from_s3('latin', '', 'format csv', %(b)s, %(k)s, %(r)s)",
                           "22P04"),
                          ("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', %(b)s, 'x', "
                           "options := 'format ' || chr(233))", "22023")]:
        diag = sql_error(conn, sql, {"b": BUCKET, "k": key, "r": REGION})
        assert diag.sqlstate == sqlstate, (sql, diag.message_primary)
    # SQL reads the texts in the database's encoding again (docs/errors.md)
    assert diag.message_primary == 'COPY format "\u00e9" not recognized'
    # the names an error carries too: a table's, a constraint's
    conn.execute('CREATE TABLE "t\u00eb" (n int NOT NULL CONSTRAINT "ch\u00ebck" CHECK (n > 0))')
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"-1\n")
    for sql, sqlstate, constraint in [
            ("SELECT * FROM aws_s3.query_export_to_s3("
             "'INSERT INTO \"t\u00eb\" VALUES (NULL) RETURNING n', %(b)s, 'x')", "23502", None),
            ("SELECT aws_s3.table_import_from_s3('\"t\u00eb\"', '', '', %(b)s, %(k)s, %(r)s)", "23514",
             "ch\u00ebck"),
            ("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1/0', %(b)s, 'x')", "22012", None)]:
        diag = sql_error(conn, sql, {"b": BUCKET, "k": key, "r": REGION})
        assert diag.sqlstate == sqlstate, (sql, diag.message_primary)
        assert diag.table_name == (None if sqlstate == "22012" else "t\u00eb")
        assert diag.constraint_name == constraint
        if sqlstate == "23514":  # COPY's context, at the end of DETAIL, in the database's encoding too
            assert diag.message_detail == 'Failing row contains (-1).\nCOPY t\u00eb, line 1: "-1"'
    assert conn.execute("SELECT 41 + 1").fetchone() == (42,)


def test_an_error_in_a_non_ascii_argument_points_into_it_outside_utf8(latin1_database, s3_database, connect, s3):
    """The internal query and position of an error in the query, the columns
    or the options, as in UTF8."""
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    calls = [("SELECT aws_s3.query_export_to_s3(%s, %s, 'k')", ('SELECT "n\u00f6" FR\u00d6M pg_class', BUCKET)),
             ("SELECT aws_s3.query_export_to_s3(%s, %s, 'k')", ('SELECT 1, "n\u00f6" FROM pg_class', BUCKET)),
             ("SELECT aws_s3.table_import_from_s3('t', %s, '', %s, %s, %s)", ('"n\u00f6", , a', BUCKET, key, REGION)),
             ("SELECT aws_s3.query_export_to_s3('SELECT 1', %s, 'k', options := %s)", (BUCKET, "format csv, n\u00f6 1"))]
    seen = {}
    for database in (s3_database, latin1_database):
        conn = connect(dbname=database, client_encoding="UTF8")
        conn.execute("DROP TABLE IF EXISTS t; CREATE TABLE t (a int)")
        seen[database] = [(diag.sqlstate, diag.message_primary, diag.internal_query, diag.internal_position)
                          for diag in (sql_error(conn, sql, params) for sql, params in calls)]
    assert [position for *_, position in seen[s3_database]] == ["18", "11", "7", "13"]
    assert seen[latin1_database] == seen[s3_database]


# EUC_JP has two characters for U+2252, the NEC extension's 0xADF0 and JIS's
# 0xA2E2; PL/Python gives table_import_from_s3 either as U+2252, which
# reaches COPY as JIS's. (A client in UTF8 cannot tell them apart: the names
# are made in SQL.)
NEC, JIS = "convert_from('\\xadf0', 'EUC_JP')", "convert_from('\\xa2e2', 'EUC_JP')"


@pytest.fixture
def euc_jp_import(cluster, connect, s3):
    """A connection to a new EUC_JP database with aws_s3 and rows_of(regclass),
    and the key of an object that holds one row."""
    conn = connect(dbname=create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE",
                                          options=in_encoding("EUC_JP")), client_encoding="UTF8")
    conn.execute("CREATE FUNCTION rows_of(t regclass) RETURNS bigint LANGUAGE plpgsql AS "
                 "$$DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %s', t) INTO n; RETURN n; END$$")
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    return conn, key


def test_an_import_refuses_a_table_or_column_named_like_another_in_unicode(euc_jp_import):
    conn, key = euc_jp_import
    conn.execute(f"""DO $$BEGIN
        EXECUTE format('CREATE TABLE %I (n int)', {NEC});
        EXECUTE format('CREATE TABLE %I (n int)', {JIS});
        EXECUTE format('CREATE TABLE columns (%I int, %I int)', {NEC}, {JIS});
    END$$""")
    for table, columns in ((f"quote_ident({NEC})", "''"), ("'columns'", f"quote_ident({JIS})")):
        diag = sql_error(conn, f"SELECT aws_s3.table_import_from_s3({table}, {columns}, '', %s, %s, %s)",
                         (BUCKET, key, REGION))
        assert diag.sqlstate == "0A000"
        assert "shares its name in Unicode with another table or column" in diag.message_primary
    assert conn.execute(f"SELECT rows_of({NEC}::regclass), rows_of({JIS}::regclass), rows_of('columns')"
                        ).fetchone() == (0, 0, 0)
    # names no other shares in Unicode
    conn.execute('CREATE TABLE "\u65e5" ("\u6708" int)')
    conn.execute("SELECT aws_s3.table_import_from_s3('\"\u65e5\"', '\"\u6708\"', '', %s, %s, %s)",
                 (BUCKET, key, REGION))
    assert conn.execute('SELECT "\u6708" FROM "\u65e5"').fetchall() == [(1,)]


def test_an_import_refuses_a_schema_named_like_another_in_unicode(euc_jp_import):
    """A schema-qualified table_name reaches COPY in the JIS schema whichever
    of the twins the caller named: the NEC one's table is refused rather
    than the other's filled."""
    conn, key = euc_jp_import
    conn.execute(f"""DO $$BEGIN
        EXECUTE format('CREATE SCHEMA %I', {NEC});
        EXECUTE format('CREATE SCHEMA %I', {JIS});
        EXECUTE format('CREATE TABLE %I.t (n int)', {NEC});
        EXECUTE format('CREATE TABLE %I.t (n int)', {JIS});
    END$$""")
    tables = [f"quote_ident({schema}) || '.t'" for schema in (NEC, JIS)]
    for table in tables:
        diag = sql_error(conn, f"SELECT aws_s3.table_import_from_s3({table}, '', '', %s, %s, %s)",
                         (BUCKET, key, REGION))
        assert (diag.sqlstate, diag.message_primary) == (
            "0A000", "aws_s3: the schema of table t shares its name in Unicode with another schema")
    assert conn.execute(f"SELECT rows_of(({tables[0]})::regclass), rows_of(({tables[1]})::regclass)").fetchone() == (
        0, 0)


@pytest.mark.parametrize("read_only", [False, True])
def test_an_import_refuses_a_table_named_like_another_of_the_search_path_in_unicode(euc_jp_import, emulator,
                                                                                    read_only):
    """A temporary table and a permanent one of public named as twins: an
    unqualified table_name may name either (COPY FROM STDIN writes public's
    when the caller names it, which a read-only transaction refuses), and
    reaches the server as the temporary one's: refused before any request,
    rather than the temporary table filled."""
    conn, key = euc_jp_import
    conn.execute(f"""DO $$BEGIN
        EXECUTE format('CREATE TABLE public.%I (n int)', {NEC});
        EXECUTE format('CREATE TEMPORARY TABLE %I (n int)', {JIS});
    END$$""")
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    emulator.reset()
    for twin in (NEC, JIS):
        diag = sql_error(conn, f"SELECT aws_s3.table_import_from_s3(quote_ident({twin}), '', '', %s, %s, %s)",
                         (BUCKET, key, REGION))
        assert (diag.sqlstate, diag.message_primary) == (
            "0A000", "aws_s3: table \u2252 or a column of it shares its name in Unicode with another table or column")
    assert emulator.counters() == {}
    assert conn.execute(f"SELECT rows_of(('public.' || quote_ident({NEC}))::regclass), "
                        f"rows_of(('pg_temp.' || quote_ident({JIS}))::regclass)").fetchone() == (0, 0)


def test_a_non_ascii_quote_is_not_split_on(latin1_database, connect, s3):
    conn = connect(dbname=latin1_database)
    conn.execute("SET aws_s3.max_file_size = '1kB'")
    sql = "SELECT n, repeat('line' || chr(10), 100) || 'end' FROM generate_series(1, 5) n"
    options = "format csv, quote '" + "\u00e9" + "'"
    key = new_key()
    expected = copy_to_stdout(conn, sql, options)
    assert export(conn, sql, key, options) == (5, 1, len(expected))
    assert object_bytes(s3, key) == expected


def test_a_refused_export_keeps_the_object_it_would_have_replaced(s3db, s3, emulator):
    key = new_key()
    export(s3db, "SELECT 'precious data'", key)
    emulator.set_faults(service="s3", error_code="AccessDenied", error_status=403, error_every=1,
                        body_contains="SECOND")
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3('SELECT ''SECOND export''', %s, %s)", (BUCKET, key))
    assert diag.sqlstate == "42501"
    assert object_bytes(s3, key) == b"precious data\n"


def test_failed_exports_leave_no_pipe_open(s3db, emulator):
    pid = s3db.execute("SELECT pg_backend_pid()").fetchone()[0]
    export(s3db, "SELECT 1", new_key())

    def pipes():
        return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if fd.readlink().name.startswith("pipe:"))
    before = pipes()
    s3db.execute("SET aws_s3.role_arn = 'arn:aws:iam::123456789012:role/aws-s3-test'")
    emulator.set_faults(service="sts", error_code="AccessDenied", error_status=403, error_every=1)
    for _ in range(10):
        assert sql_error(s3db, "SELECT aws_s3.query_export_to_s3('SELECT 1', %s, %s)",
                         (BUCKET, new_key())).sqlstate == "42501"
    assert pipes() == before


@pytest.mark.parametrize("after", [b"2\n", b"2\n" * 2_000_000])
def test_an_import_ends_at_the_end_of_data_marker_whatever_follows(s3db, s3, after):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n\\.\n" + after)
    table = f"marked_{uuid.uuid4().hex[:8]}"
    s3db.execute(f"CREATE TABLE {table} (n int)")
    summary = s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', '', %s, %s, %s)",
                           (table, BUCKET, key, REGION)).fetchone()[0]
    assert summary.startswith(f'1 rows imported into relation "{table}"')
    assert s3db.execute(f"SELECT array_agg(n) FROM {table}").fetchone() == ([1],)
