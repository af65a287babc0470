"""aws_ml beside the extensions production servers preload: pg_stat_statements
(track = all, track_planning) and auto_explain (every statement, nested ones
too, ANALYZE, VERBOSE), before aws_ml in shared_preload_libraries, after it,
or with aws_ml loaded at its first use. Each hook aws_ml installs (batch/
plan.c's planner and executor start, python/plpython_errors.c's error guard,
the fmgr hooks of python/python_path.c and python/deliberate_errors.c) sits
in a chain with theirs and must call the one before it once: batch mode
answers as row by row, EXPLAIN and auto_explain show the batching node,
pg_stat_statements counts the caller's statement once, errors reach the
client as PostgreSQL's own, and a cancel still stops a batched query."""
import re
import time
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.batch_grammar import cases
from tests.conftest import create_database, in_encoding, new_cluster, requests_in_flight, stop_when
from tests.test_batch_differential import check, differential_database, tables
from tests.test_cancel import HANG_SECONDS, assert_nothing_left_in_flight
from tests.test_encoding_errors import FIELDS, TABLE, failure_in

pytestmark = pytest.mark.slow  # three clusters of its own

OTHERS = "pg_stat_statements,auto_explain"
AWS_ML = "$libdir/plugins/aws_ml"
PRELOADS = {
    "others_first": f"{OTHERS},{AWS_ML}",
    "aws_ml_first": f"{AWS_ML},{OTHERS}",
    "aws_ml_on_first_use": OTHERS,
}
SETTINGS = {
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_planning": "on",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_verbose": "on",
}


class Server:
    """A cluster with the other extensions preloaded, its databases: UTF8
    (the differential test's tables too) and LATIN1."""

    def __init__(self, cluster, databases, differential):
        self.cluster, self.databases, self.differential = cluster, databases, differential

    def connect(self, dbname="UTF8", **options):
        return psycopg.connect(self.cluster.conninfo(self.databases.get(dbname, dbname)), autocommit=True,
                               **options)


@pytest.fixture(scope="module", params=PRELOADS)
def server(request, emulator):
    cluster = new_cluster(emulator, shared_preload_libraries=PRELOADS[request.param], **SETTINGS).start()
    try:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        latin1 = create_database(cluster, options=in_encoding("LATIN1"))
        with differential_database(cluster, emulator, "aws_ml_differential") as differential:
            yield Server(cluster, {"UTF8": "aws_ml_differential", "LATIN1": latin1}, differential)
        assert not re.search(r"terminated by signal|PANIC|TRAP", cluster.server_log())
    finally:
        cluster.stop()


# --- 1. batch mode answers as row by row ------------------------------------------------

@settings(max_examples=8, deadline=None, database=None, derandomize=False, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@seed(20)
@given(data=tables, case=cases(frozenset()))
def test_batch_mode_gives_row_by_rows_answers(server, emulator, data, case):
    check(server.differential, emulator, data, case)


# --- 2. EXPLAIN, auto_explain, pg_stat_statements -----------------------------------------

def batched_query(tag):
    """Three texts, one batch; tag makes the statement and its log lines its own."""
    return ("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
            f"FROM (VALUES ('I love it'), ('I hate it'), ('It is a table')) AS t (body) WHERE '{tag}' <> ''")


def logged_plans(server, sql):
    """auto_explain's plans of sql in the server log."""
    return re.findall(r"LOG:  duration: [\d.]+ ms  plan:\n\tQuery Text: " + re.escape(sql) + r"\n((?:\t.*\n)+)",
                      server.cluster.server_log())


def test_a_batched_query_is_explained_logged_and_counted_once(server, emulator):
    """The session's first statement: where aws_ml is not preloaded, it loads
    the module while it is planned, and executor start rewrites its plan."""
    tag = uuid.uuid4().hex
    sql = batched_query(tag)
    emulator.reset()
    with server.connect() as conn:
        assert conn.execute(sql).fetchall() == [("POSITIVE",), ("NEGATIVE",), ("NEUTRAL",)]
        counters = emulator.counters()["comprehend"]
        assert (set(counters), counters["BatchDetectSentiment"]["items"]) == ({"BatchDetectSentiment"}, 3)
        explained = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, VERBOSE) " + sql))
    assert re.search(r"^Custom Scan \(AwsMlBatch\).*\n.*\n  Batched Call: aws_comprehend\.detect_sentiment.*\n"
                     r"  Batch Processing: num batches=1 avg/min/max batch size=3\.000/3\.000/3\.000", explained,
                     re.MULTILINE), explained
    # one plan logged for the statement, one for the EXPLAIN's: each executor hook ran once
    plans = logged_plans(server, sql) + logged_plans(server, "EXPLAIN (ANALYZE, VERBOSE) " + sql)
    assert len(plans) == 2, plans
    for plan in plans:
        assert re.search(r"^\tCustom Scan \(AwsMlBatch\).*rows=3 loops=1\)\n.*\n\t  Batched Call: "
                         r"aws_comprehend\.detect_sentiment.*\n\t  Batch Processing: num batches=1 avg/min/max "
                         r"batch size=3\.000/3\.000/3\.000", plan, re.MULTILINE), plan


def test_pg_stat_statements_counts_the_callers_statement_once(server, emulator):
    """calls, plans and rows of the statement as the client sent it; a
    procedure's CALL through ProcessUtility's hooks counted once too."""
    tag = uuid.uuid4().hex
    with server.connect("postgres") as statistics:
        statistics.execute("SELECT public.pg_stat_statements_reset()")
    with server.connect() as conn:
        for _ in range(2):
            conn.execute(batched_query(tag)).fetchall()
        conn.execute("CREATE TEMP TABLE notes (id int PRIMARY KEY, body text, sentiment text, confidence real)")
        conn.execute("INSERT INTO notes VALUES (1, 'I love it'), (2, 'I hate it')")
        conn.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', 'sentiment')")
    with server.connect("postgres") as statistics:
        counts = {query: (calls, plans, rows) for query, calls, plans, rows in statistics.execute(
            "SELECT query, calls, plans, rows FROM public.pg_stat_statements WHERE toplevel")}
    assert counts["SELECT (aws_comprehend.detect_sentiment(body, $1)).sentiment FROM (VALUES ($2), ($3), ($4)) "
                  "AS t (body) WHERE $5 <> $6"] == (2, 2, 6), counts
    assert counts["CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', 'sentiment')"] == (1, 0, 0)


# --- 3. errors ----------------------------------------------------------------------------

# SET CONSTRAINTS (ProcessUtility's hooks), a function run at the executor's start (its hooks, batch mode's among them)
@pytest.mark.parametrize("failure", ["deferred foreign key", "rule pruning at the executor's start"])
def test_a_backfills_error_in_latin1_reads_as_in_utf8(server, emulator, failure):
    """The error guard's planner, executor and ProcessUtility hooks, among the others'."""
    def connect(dbname, **options):
        opened = server.connect(dbname, **options)
        opens.append(opened)
        return opened
    opens = []
    try:
        emulator.reset()
        _, expected = failure_in(connect, server.databases["UTF8"], failure, "{}")
        conn, diag = failure_in(connect, server.databases["LATIN1"], failure, "{}")
        assert expected.sqlstate.startswith("23") or expected.sqlstate == "P0001"
        assert {field: getattr(diag, field) for field in FIELDS} == {
            field: getattr(expected, field) for field in FIELDS}
        assert conn.execute(f"SELECT count(s\u00e9ntiment) FROM {TABLE}").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InvalidParameterValue) as bad_language:
            conn.execute("SELECT aws_comprehend.detect_sentiment('x', 'xx')")
        assert bad_language.value.diag.message_primary.startswith("aws_ml: Comprehend DetectSentiment")
        assert conn.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone() == (
            "POSITIVE",)
    finally:
        for opened in opens:
            opened.close()


def test_an_aws_ml_error_in_latin1_reads_as_in_utf8(server, emulator):
    """A bad language code in a batched query: the same error in both databases, the session goes on."""
    sql = ("SELECT (aws_comprehend.detect_sentiment(body, 'xx')).sentiment "
           "FROM (VALUES ('I love it'), ('d\u00e9j\u00e0 vu')) AS t (body)")
    diags = {}
    for dbname in ("UTF8", "LATIN1"):
        with server.connect(dbname, client_encoding="UTF8") as conn:
            with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
                conn.execute(sql)
            diags[dbname] = {field: getattr(caught.value.diag, field) for field in FIELDS}
            assert conn.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone() \
                == ("POSITIVE",)
    assert diags["LATIN1"] == diags["UTF8"]
    assert diags["UTF8"]["message_primary"].startswith("aws_ml: Comprehend")


# --- 4. cancel ----------------------------------------------------------------------------

@pytest.mark.parametrize("stop", ["pg_cancel_backend", "statement_timeout"])
def test_a_cancel_stops_a_batched_query_with_the_service_hanging(server, emulator, stop):
    sql = batched_query(uuid.uuid4().hex)
    with server.connect() as conn:
        conn.execute("SELECT aws_comprehend.detect_sentiment('a session that has loaded the module', 'en')")
        emulator.reset()
        emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
        if stop == "statement_timeout":
            conn.execute("SET statement_timeout = '1s'")
            timer = None
        else:
            timer = stop_when(server.connect, conn.info.backend_pid, requests_in_flight(emulator, "comprehend", 1),
                              "the batch's request to hang")
        started = time.monotonic()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(sql)
        finally:
            if timer:
                timer.join()
        assert time.monotonic() - started < HANG_SECONDS / 3
        assert_nothing_left_in_flight(emulator, "comprehend", 1)
        emulator.clear_faults()
        conn.execute("SET statement_timeout = 0")
        assert conn.execute(sql).fetchall() == [("POSITIVE",), ("NEGATIVE",), ("NEUTRAL",)]
    # auto_explain logs a plan at the executor's end, which a cancelled statement never reaches
    assert len(logged_plans(server, sql)) == 1
