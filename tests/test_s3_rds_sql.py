"""RDS and Aurora users' aws_s3 SQL, unchanged: the RDS guide's examples
verbatim through psql, COPY's options in every form COPY takes them, a
query's trailing semicolon, and the arguments parsed each on its own (a
comment or quote in one never reaches another; a syntax error points into
the argument)."""
import gzip
import subprocess
import uuid

import psycopg
import pytest

from tests.conftest import ACCESS_KEY_ID, REGION, counter
from tests.s3_support import (BUCKET, copy_from_stdin_error, copy_to_stdout, export,  # noqa: F401 (fixtures)
                              new_key, object_bytes, s3, s3_database, s3db, sql_error)

ROWS_SQL = "SELECT n, 'row ' || n AS label, n * 0.5 AS x FROM generate_series(1, 20) n"


def psql(cluster, database, script):
    done = subprocess.run([str(cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                           "-d", cluster.conninfo(database)], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_table(conn, columns):
    name = f"t_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {name} ({columns})")
    return name


def test_the_rds_guides_imports_run_verbatim(cluster, s3_database, s3db, s3, emulator):
    """The RDS guide's import examples, names changed: '(format csv)' with a
    psql variable from create_s3_uri, a custom delimiter and a column list,
    a gzip-encoded file, and credentials with an empty session token."""
    s3.put_object(Bucket=BUCKET, Key="rds/sample_file.csv", Body=b"1,one\n2,two\n")
    s3.put_object(Bucket=BUCKET, Key="rds/dashes.txt", Body=b"1-a-b-c\n")
    s3.put_object(Bucket=BUCKET, Key="rds/test-data.gz", Body=gzip.compress(b"3,three\n"), ContentEncoding="gzip")
    s3db.execute("CREATE TABLE t1 (n int, label text)")
    s3db.execute("CREATE TABLE test (a int, b text, c text, d text, e text)")
    psql(cluster, s3_database, f"""
SELECT aws_commons.create_s3_uri(
   '{BUCKET}',
   'rds/sample_file.csv',
   '{REGION}'
) AS s3_uri \\gset

SELECT aws_s3.table_import_from_s3(
   't1',
   '',
   '(format csv)',
   :'s3_uri'
);

SELECT aws_s3.table_import_from_s3(
   'test',
   'a,b,d,e',
   'DELIMITER ''-''',
   '{BUCKET}',
   'rds/dashes.txt',
   '{REGION}'
);

SELECT aws_s3.table_import_from_s3(
 't1', '', '(format csv)',
 '{BUCKET}', 'rds/test-data.gz', '{REGION}'
);

SELECT aws_s3.table_import_from_s3(
   't1', '', '(format csv)',
   :'s3_uri',
   aws_commons.create_aws_credentials('AKIASAMPLEACCESSKEY1', 'sample_secret_key', '')
);
""")
    assert s3db.execute("SELECT n, label FROM t1 ORDER BY n").fetchall() == [
        (1, "one"), (1, "one"), (2, "two"), (2, "two"), (3, "three")]
    assert s3db.execute("SELECT * FROM test").fetchall() == [(1, "a", None, "b", "c")]
    assert emulator.counters()["s3"]["GET"]["access_key_ids"]["AKIASAMPLEACCESSKEY1"] == 1


def test_the_rds_guides_exports_run_verbatim(cluster, s3_database, s3db, s3):
    s3db.execute(f"CREATE TABLE sample_table AS {ROWS_SQL}")
    psql(cluster, s3_database, f"""
SELECT aws_commons.create_s3_uri('{BUCKET}', 'rds/sample-filepath', '{REGION}') AS s3_uri_1 \\gset
SELECT * from aws_s3.query_export_to_s3('select * from sample_table', :'s3_uri_1');
SELECT aws_commons.create_s3_uri('{BUCKET}', 'rds/text', '{REGION}') AS s3_uri_1 \\gset
SELECT * from aws_s3.query_export_to_s3('select * from sample_table', :'s3_uri_1', options :='format text');
SELECT aws_commons.create_s3_uri('{BUCKET}', 'rds/csv', '{REGION}') AS s3_uri_1 \\gset
SELECT * from aws_s3.query_export_to_s3('select * from sample_table', :'s3_uri_1', options :='format csv');
SELECT aws_commons.create_s3_uri('{BUCKET}', 'rds/colon', '{REGION}') AS s3_uri_1 \\gset
SELECT * from aws_s3.query_export_to_s3('select * from sample_table', :'s3_uri_1',
    options :='format csv, delimiter $$:$$');
SELECT aws_commons.create_s3_uri('{BUCKET}', 'rds/header', '{REGION}') AS s3_uri_1 \\gset
SELECT * from aws_s3.query_export_to_s3('select * from sample_table', :'s3_uri_1',
    options :='format csv, HEADER true');
""")
    for key, options in (("sample-filepath", None), ("text", "format text"), ("csv", "format csv"),
                         ("colon", "format csv, delimiter ':'"), ("header", "format csv, header true")):
        assert object_bytes(s3, f"rds/{key}") == copy_to_stdout(s3db, "SELECT * FROM sample_table", options), key


# COPY's options as users write them, beside the same in COPY's modern syntax
OPTION_FORMS = [
    ("(format csv)", "format csv"),
    ("(FORMAT CSV, DELIMITER ',', HEADER true)", "format csv, header true"),
    ("WITH (format csv, header)", "format csv, header true"),
    ("format csv, header true", "format csv, header true"),
    ("FORMAT CSV, DELIMITER '|', NULL 'NIL'", "format csv, delimiter '|', null 'NIL'"),
    ("CSV HEADER", "format csv, header true"),
    ("WITH CSV HEADER", "format csv, header true"),
    ("csv header quote as ''''", "format csv, header true, quote ''''"),
    ("DELIMITER AS '^'", "delimiter '^'"),
    ("DELIMITER E'\\t' NULL AS 'NIL'", "delimiter E'\\t', null 'NIL'"),
    ("delimiter '|'", "delimiter '|'"),
    ("BINARY", "format binary"),
    ("  -- blank but for a comment\n", None),
]


@pytest.mark.parametrize("form, modern", OPTION_FORMS)
def test_options_in_every_form_copy_takes(s3db, s3, form, modern):
    key = new_key()
    expected = copy_to_stdout(s3db, ROWS_SQL, modern)
    assert export(s3db, ROWS_SQL, key, form) == (20, 1, len(expected))
    assert object_bytes(s3, key) == expected
    table = new_table(s3db, "n int, label text, x numeric")
    s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', %s, %s, %s, %s)", (table, form, BUCKET, key, REGION))
    assert s3db.execute(f"SELECT count(*) FROM ({ROWS_SQL} EXCEPT SELECT * FROM {table}) missing").fetchone() == (0,)
    assert s3db.execute(f"SELECT count(*) FROM {table}").fetchone() == (20,)


@pytest.mark.parametrize("query", ["SELECT 1;", "SELECT 1 ;  -- the end\n", "SELECT 1; /* done */ ;\n\t",
                                   "SELECT 1 -- a comment at the end"])
def test_a_trailing_semicolon_whitespace_and_comments(s3db, s3, query):
    key = new_key()
    assert export(s3db, query, key) == (1, 1, 2)
    assert object_bytes(s3, key) == b"1\n"


def test_a_second_statement_is_refused(s3db, s3, emulator):
    key = new_key()
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s)", ("SELECT 1; SELECT 2", BUCKET, key))
    assert diag.sqlstate == "42601" and "aws_s3: query must be one statement" in diag.message_primary
    assert counter(emulator.counters(), "s3", "PUT") == 0


@pytest.mark.parametrize("options, position, message", [
    ("format csv header", 12, 'syntax error at or near "header"'),
    ("(format csv", 12, "syntax error at end of input"),
    ("format csv, header true,", 25, 'syntax error at or near ")"'),
    ("format csv, bogus 1", 13, 'option "bogus" not recognized'),
    ("format csv, delimiter 'ab'", None, "COPY delimiter must be a single one-byte character"),
])
def test_an_error_in_options_points_into_them(s3db, options, position, message):
    table = new_table(s3db, "a int")  # COPY FROM reports a table it cannot find before its options
    for sql in ("SELECT aws_s3.query_export_to_s3('SELECT 1', %s, 'k', options := %s)",
                f"SELECT aws_s3.table_import_from_s3('{table}', '', %s, %s, 'k', 'us-east-1')"):
        params = (BUCKET, options) if "export" in sql else (options, BUCKET)
        diag = sql_error(s3db, sql, params)
        assert message in diag.message_primary
        if position is not None:
            assert (diag.internal_query, diag.internal_position) == (options, str(position))


@pytest.mark.parametrize("table", ["missing", "present"])
@pytest.mark.parametrize("column_list", ["", "a", "nope", "a, , b"])
@pytest.mark.parametrize("options", ["format csv", "format csv, bogus 1", "format csv header"])
def test_an_import_reports_the_error_copy_from_reports_first_before_any_request(s3db, emulator, table, column_list,
                                                                                 options):
    """The statement's syntax (its columns', then its options'), the table,
    its columns, then the options' values: COPY FROM STDIN's order."""
    s3db.execute("CREATE TABLE IF NOT EXISTS present (a int, b int)")
    columns = f" ({column_list})" if column_list else ""
    reference = copy_from_stdin_error(s3db, f"COPY {table}{columns} FROM STDIN WITH ({options})")
    emulator.reset()
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3(%s, %s, %s, %s, 'no/such/key', 'us-east-1')",
                     (table, column_list, options, BUCKET))
    if reference is None:  # COPY would read: the download starts, and finds no object
        assert (diag.sqlstate, counter(emulator.counters(), "s3", "GET")) == ("42704", 1)
    else:
        assert ((diag.sqlstate, diag.message_primary), emulator.counters()) == (reference, {})


def test_an_error_in_the_query_or_the_columns_points_into_them(s3db, s3):
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, 'k')", ("SELECT 1, nosuch FROM pg_class", BUCKET))
    assert (diag.sqlstate, diag.internal_query, diag.internal_position) == ("42703", "SELECT 1, nosuch FROM pg_class",
                                                                            "11")
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, 'k')", ("SELECT 1 +", BUCKET))
    assert (diag.sqlstate, diag.internal_query, diag.internal_position) == ("42601", "SELECT 1 +", "11")
    table, key = new_table(s3db, "a int, b text"), new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3(%s, 'a, , b', '', %s, %s, %s)",
                     (table, BUCKET, key, REGION))
    assert (diag.sqlstate, diag.internal_query, diag.internal_position) == ("42601", "a, , b", "4")


@pytest.mark.parametrize("query, options", [
    # a block comment opened in the query and closed in options that are
    # valid alone: together they made another COPY than the one checked
    ("SELECT 1 /*", "format text, null '*/ ) TO STDOUT WITH (format csv, header true) --'"),
    ("SELECT 1 /*", "*/ format binary"),
    ("SELECT 1 /*", "*/ ) TO STDOUT WITH (format binary"),
    # a quote opened in the query
    ("SELECT '", "' || 2) TO STDOUT --"),
    # options that would close the statement and start another
    ("SELECT 1", "format csv); SELECT pg_sleep(0); COPY (SELECT 1) TO STDOUT (format csv"),
    ("SELECT 1", "format csv) WHERE (true"),
])
def test_the_query_and_the_options_never_combine(s3db, s3, emulator, query, options):
    diag = sql_error(s3db, "SELECT aws_s3.query_export_to_s3(%s, %s, %s, options := %s)",
                     (query, BUCKET, new_key(), options))
    assert diag.sqlstate == "42601", diag.message_primary
    assert counter(emulator.counters(), "s3", "PUT") == 0


@pytest.mark.parametrize("table_name, column_list, options", [
    ("{table} /*", "*/ a", ""),
    ("{table}", "a /*", "*/ format csv"),
    ("{table}", "a) FROM STDIN; DROP TABLE {table}; --", ""),
    ("{table} FROM STDIN; DROP TABLE {table}; --", "", ""),
    ("{table} (a)", "b", ""),
    ("{table}", "a", "format csv) FROM STDIN; DROP TABLE {table}; COPY {table} FROM STDIN (format csv"),
])
def test_the_table_columns_and_options_never_combine(s3db, s3, table_name, column_list, options):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    table = new_table(s3db, "a int, b text")
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3(%s, %s, %s, %s, %s, %s)",
                     tuple(text.format(table=table) for text in (table_name, column_list, options))
                     + (BUCKET, key, REGION))
    assert diag.sqlstate == "42601", diag.message_primary
    assert s3db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_a_table_name_may_list_its_columns(s3db, s3):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x\n")
    table = new_table(s3db, "a int DEFAULT 7, b text")
    s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', '', %s, %s, %s)", (f"{table} (b)", BUCKET, key, REGION))
    assert s3db.execute(f"SELECT * FROM {table}").fetchall() == [(7, "x")]


@pytest.mark.parametrize("sql", [
    "SELECT aws_s3.table_import_from_s3(%(t)s, '', '', %(b)s, %(k)s, %(r)s, 'AKIAEMPTYTOKEN000001', 'secret', '')",
    "SELECT aws_s3.table_import_from_s3(%(t)s, '', '', aws_commons.create_s3_uri(%(b)s, %(k)s, %(r)s), "
    "aws_commons.create_aws_credentials('AKIAEMPTYTOKEN000001', 'secret', ''))",
])
def test_an_empty_session_token_is_no_token(s3db, s3, emulator, sql):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    table = new_table(s3db, "n int")
    s3db.execute(sql, {"t": table, "b": BUCKET, "k": key, "r": REGION})
    assert emulator.counters()["s3"]["GET"]["access_key_ids"] == {"AKIAEMPTYTOKEN000001": 1}
    assert s3db.execute(f"SELECT n FROM {table}").fetchall() == [(1,)]


def test_empty_credentials_are_the_servers(s3db, s3, emulator):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    table = new_table(s3db, "n int")
    s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', '', %s, %s, %s, '', '', '')", (table, BUCKET, key, REGION))
    assert list(emulator.counters()["s3"]["GET"]["access_key_ids"]) == [ACCESS_KEY_ID]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        s3db.execute("SELECT aws_s3.table_import_from_s3(%s, '', '', %s, %s, %s, '', '', 'token')",
                     (table, BUCKET, key, REGION))
