"""docs/errors.md's table, row by row: each kind of error reaches SQL with
its SQLSTATE, a message that starts with aws_ml: and names the service and
operation (PostgreSQL's own for a cancel), the AWS error code in DETAIL when
AWS answered, a HINT when there is something to do, and the CONTEXT a C
function's error would have: none at the top level, the caller's lines
inside a PL/pgSQL function, never PL/Python's traceback."""
import re

import psycopg
import pytest

from tests.conftest import ROOT
from tests.s3_support import BUCKET, s3, s3_database, s3db  # noqa: F401 (fixtures)

DETECT = "SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')"
DETECT_FAILED = "aws_ml: Comprehend DetectSentiment failed: "
AWS_CODE = re.compile(r"AWS error code: \w+( \(HTTP \d+\))?$")


class Case:
    def __init__(self, sql, message, detail=None, hint=False, settings=(), fault=None):
        """message: the message's start (a str) or its whole (a compiled
        pattern); detail: a pattern or None; hint: whether there is one."""
        self.sql, self.message, self.detail, self.hint = sql, message, detail, hint
        self.settings, self.fault = settings, fault


CASES = {
    "22023": Case("SELECT * FROM aws_comprehend.detect_sentiment('Bonjour', 'xx')", DETECT_FAILED, AWS_CODE,
                  hint=True),
    "22004": Case("SELECT * FROM aws_comprehend.detect_sentiment('I love it', NULL)",
                  re.compile(r"aws_ml: language_code must not be NULL")),
    "55000": Case(DETECT, re.compile(r"aws_ml: no AWS Region is configured"), hint=True,
                  settings=["SET aws_ml.region = ''"]),
    "42501": Case(DETECT, DETECT_FAILED, AWS_CODE, hint=True,
                  fault=dict(service="comprehend", error_code="AccessDeniedException", error_status=400,
                             error_every=1)),
    "42704": Case("SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1, 2)",
                  "aws_ml: SageMaker InvokeEndpoint failed: ", AWS_CODE),
    "53400": Case(DETECT, DETECT_FAILED, AWS_CODE, hint=True, settings=["SET aws_ml.max_attempts = 1"],
                  fault=dict(service="comprehend", throttle_every=1)),
    "58030": Case(DETECT, DETECT_FAILED, re.compile(r"botocore error: \w+$"), hint=True,
                  settings=["SET aws_ml.max_attempts = 1", "SET aws_ml.request_timeout_ms = 300"],
                  fault=dict(service="comprehend", hang_seconds=30)),
    "38000": Case(DETECT, DETECT_FAILED, AWS_CODE, hint=True, settings=["SET aws_ml.max_attempts = 1"],
                  fault=dict(service="comprehend", error_status=500, error_every=1)),
    "57014": Case(DETECT, re.compile(r"canceling statement due to statement timeout"),
                  settings=["SET statement_timeout = '500ms'"], fault=dict(service="comprehend", hang_seconds=30)),
}


def table_rows():
    """(what went wrong, SQLSTATE) of the first table of docs/errors.md."""
    text = (ROOT / "docs" / "errors.md").read_text()
    return re.findall(r"^\| ([^|]+?) \| (\d{2}[0-9A-Z]{3}) \|", text, re.MULTILINE)


def test_the_table_is_there():
    assert [sqlstate for _, sqlstate in table_rows()] == list(CASES)


WRAPPED = """CREATE FUNCTION pg_temp.wrapped() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM count(*) FROM ({sql}) AS call;
END
$f$"""


def assert_context(diag, wrapped):
    """A C function's error's CONTEXT: none at the top level, the caller's
    lines inside pg_temp.wrapped() (WRAPPED)."""
    if wrapped:
        assert re.fullmatch(r'SQL statement "SELECT count\(\*\) FROM \(.*\) AS call"\n'
                            r"PL/pgSQL function pg_temp_\d+\.wrapped\(\) line 3 at PERFORM",
                            diag.context, re.DOTALL), diag.context
    else:
        assert diag.context is None, diag.context


def raised(db, emulator, case, sql):
    db.execute("RESET ALL")
    for setting in case.settings:
        db.execute(setting)
    if case.fault:
        emulator.set_faults(**case.fault)
    try:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql)
    finally:
        emulator.clear_faults()
        db.execute("RESET ALL")
    return caught.value.diag


@pytest.mark.parametrize("what, sqlstate", table_rows())
def test_each_kind_of_error_reads_like_postgresqls_own(db, emulator, what, sqlstate):
    case = CASES[sqlstate]
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('warm-up', 'en')")
    for wrapped in (False, True):
        if wrapped:
            db.execute("DROP FUNCTION IF EXISTS pg_temp.wrapped()")
            db.execute(WRAPPED.format(sql=case.sql))
        diag = raised(db, emulator, case, "SELECT pg_temp.wrapped()" if wrapped else case.sql)
        assert diag.sqlstate == sqlstate, (what, diag.message_primary)
        if isinstance(case.message, str):
            assert diag.message_primary.startswith(case.message), diag.message_primary
        else:
            assert case.message.fullmatch(diag.message_primary), diag.message_primary
        if case.detail:
            assert case.detail.search(diag.message_detail or ""), diag.message_detail
        else:
            assert diag.message_detail is None
        assert (diag.message_hint is not None) == case.hint, diag.message_hint
        assert_context(diag, wrapped)


# aws_s3's errors, of each kind that reaches SQL: (call, its SQLSTATE, the
# message's start); the database has the table s3_errors (n int).
S3_URI = f"aws_commons.create_s3_uri('{BUCKET}', '{{key}}', 'us-east-1')"
S3_CASES = [
    (f"SELECT aws_s3.table_import_from_s3('s3_errors', '', '', {S3_URI.format(key='no/such/key')})",
     "42704", f"aws_s3: S3 GetObject of s3://{BUCKET}/no/such/key failed: file does not exist"),
    (f"SELECT * FROM aws_s3.query_export_to_s3(NULL, {S3_URI.format(key='k')})", "22004",
     "aws_s3: query must not be NULL"),
    (f"SELECT * FROM aws_s3.query_export_to_s3('SELECT 1 / (n - 1) FROM s3_errors', {S3_URI.format(key='k')})",
     "22012", "division by zero"),
    (f"SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', {S3_URI.format(key='k')}, 'format csv,, header')",
     "42601", 'syntax error at or near ","'),
]


@pytest.mark.parametrize("sql, sqlstate, message", S3_CASES)
def test_aws_s3s_errors_read_like_postgresqls_own(s3db, s3, sql, sqlstate, message):
    """Without PL/Python's traceback in CONTEXT: none at the top level, the
    caller's lines inside a PL/pgSQL function; a syntax error in an argument
    points into it (its internal query) in both."""
    s3db.execute("CREATE TABLE IF NOT EXISTS s3_errors AS SELECT 1 AS n")
    s3db.execute("DROP FUNCTION IF EXISTS pg_temp.wrapped()")
    s3db.execute(WRAPPED.format(sql=sql.replace("SELECT * FROM ", "SELECT ")))
    for wrapped in (False, True):
        with pytest.raises(psycopg.Error) as caught:
            s3db.execute("SELECT pg_temp.wrapped()" if wrapped else sql)
        diag = caught.value.diag
        assert (diag.sqlstate, diag.message_primary.startswith(message)) == (sqlstate, True), diag.message_primary
        assert (diag.internal_query is not None) == (sqlstate == "42601"), diag.internal_query
        assert_context(diag, wrapped)
