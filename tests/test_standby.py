"""aws_ml and aws_s3 where the transaction cannot write: on a hot standby (a
streaming replica made with pg_basebackup -R, aws_ml preloaded as on its
primary), and on the primary in read-only transactions (SET TRANSACTION
READ ONLY, default_transaction_read_only). What only reads answers as on the
primary, with the same requests: the reference's examples row by row and in
batch mode, the statement cache, parallel plans, stats, roles, exports, a
cancel. What writes (the backfills, aws_s3's import) is refused with 25006
and a hint before any request. A standby promoted in the middle of a session
then writes from that session."""
import contextlib

import psycopg
import pytest

from tests import s3_support, test_bedrock
from tests.conftest import ACCESS_KEY_ID, create_database, new_cluster, requests_in_flight, stop_when, wait_until
from tests.plans import explain_analyze, force_parallel_plan, workers_launched
from tests.reference import CLASSIFY_EVENT_4, CLINICIAN_NOTES_UPDATE
from tests.s3_support import copy_to_stdout
from tests.test_cancel import HANG_SECONDS, assert_nothing_left_in_flight
from tests.test_comprehend import SUPPORT_FEEDBACK
from tests.test_credentials import ROLE
from tests.test_dump_restore import register_endpoint, requests
from tests.test_materialize import run_in_thread
from tests.test_parallel import QUERY as PARALLEL_QUERY
from tests.test_parallel import ROWS as PARALLEL_ROWS

pytestmark = pytest.mark.slow  # a primary and standbys of its own

BUCKET = "aws-ml-standby-tests"
OBJECT = "standby/import.csv"
NOTES = 40  # the backfill's rows
PASSAGES = 5
TITAN = "amazon.titan-embed-text-v1"
MEMBER = "standby_member"  # a member of aws_ml, no superuser

PRIMARY_SQL = [
    "CREATE EXTENSION aws_s3",
    "CREATE TABLE support (id serial PRIMARY KEY, feedback text)",
    CLASSIFY_EVENT_4,
    "CREATE TABLE events (id int PRIMARY KEY, event_type int, event_day date, amount real)",
    "INSERT INTO events SELECT n, n % 3, date '2024-01-01' + n, CASE WHEN n % 5 = 0 THEN NULL ELSE n * 0.5 END "
    "FROM generate_series(1, 30) n",
    "CREATE TABLE passages (id int PRIMARY KEY, body text, embedding float8[])",
    f"INSERT INTO passages SELECT n, 'passage ' || n || ' about PostgreSQL monitoring' "
    f"FROM generate_series(1, {PASSAGES}) n",
    "CREATE TABLE notes (id int PRIMARY KEY, body text, sentiment varchar, confidence real)",
    f"INSERT INTO notes SELECT n, 'note ' || n || CASE n % 2 WHEN 0 THEN ': I love it.' ELSE ': I hate it.' END "
    f"FROM generate_series(1, {NOTES}) n",
    "CREATE TABLE imported (id int, body text)",
    "CREATE TABLE clinician_notes (id serial PRIMARY KEY, french_notes text, sentiment varchar, confidence real)",
    "INSERT INTO clinician_notes (french_notes) VALUES ('Le patient est très heureux.'), ('Terrible douleur.')",
    # test_parallel's table
    "CREATE TABLE parallel_notes (id int PRIMARY KEY, body text)",
    "INSERT INTO parallel_notes SELECT n, 'note ' || n || CASE n % 3 WHEN 0 THEN ': I love it' "
    f"WHEN 1 THEN ': I hate it' ELSE ': it is a table' END FROM generate_series(1, {PARALLEL_ROWS}) n",
    "ALTER TABLE parallel_notes SET (parallel_workers = 2)",
    f"CREATE ROLE {MEMBER} LOGIN",
    f"GRANT aws_ml TO {MEMBER}",
    f"GRANT SELECT ON support TO {MEMBER}",
    f"GRANT SELECT, UPDATE ON notes TO {MEMBER}",
]


class Servers:
    def __init__(self, primary, standby, database):
        self.primary, self.standby, self.database = primary, standby, database

    def connect(self, server, user="postgres"):
        return psycopg.connect(server.conninfo(self.database, user), autocommit=True)


PARALLEL_SETTINGS = {"max_worker_processes": "16", "max_parallel_workers": "8"}  # as the shared cluster's


def new_standby(emulator, primary, **settings):
    return new_cluster(emulator, **PARALLEL_SETTINGS, **settings).start_standby_of(primary)


def replayed(primary, standby):
    """Waits until the standby (a connection) has replayed what the primary
    (a connection) has written so far."""
    lsn = primary.execute("SELECT pg_catalog.pg_current_wal_lsn()").fetchone()[0]
    wait_until(lambda: standby.execute("SELECT pg_catalog.pg_last_wal_replay_lsn() >= %s::pg_catalog.pg_lsn",
                                       (lsn,)).fetchone()[0], "the standby to replay the primary's WAL")


@pytest.fixture(scope="module")
def servers(emulator, aws_client):
    """A primary with aws_ml and aws_s3, aws_ml preloaded, the tables of the
    tests; its standby, replayed; a bucket with an object to import."""
    primary = new_cluster(emulator, shared_preload_libraries="$libdir/plugins/aws_ml", **PARALLEL_SETTINGS).start()
    standby = None
    try:
        database = create_database(primary, "standby_test")
        with psycopg.connect(primary.conninfo(database), autocommit=True) as conn:
            for sql in PRIMARY_SQL:
                conn.execute(sql)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO support (feedback) VALUES (%s)", [(text,) for text in SUPPORT_FEEDBACK])
            standby = new_standby(emulator, primary)
            with psycopg.connect(standby.conninfo(database), autocommit=True) as replica:
                replayed(conn, replica)
                assert replica.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone() == (True,)
        s3 = aws_client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=OBJECT, Body=b"100,imported row\n101,another row\n")
        register_endpoint(emulator)
        yield Servers(primary, standby, database)
    finally:
        if standby:
            standby.stop()
        primary.stop()


READERS = ("standby", "read_only_transaction", "default_read_only")


class Reader:
    """A session whose statements cannot write: on the standby, or on the
    primary with each statement in a transaction block that SET TRANSACTION
    READ ONLY (rolled back), or with default_transaction_read_only on."""

    def __init__(self, servers, kind):
        self.kind = kind
        self.conn = servers.connect(servers.standby if kind == "standby" else servers.primary)
        if kind == "default_read_only":
            self.conn.execute("SET default_transaction_read_only = on")

    @contextlib.contextmanager
    def statement(self):
        if self.kind != "read_only_transaction":
            yield self.conn
            return
        with self.conn.transaction(force_rollback=True):
            self.conn.execute("SET TRANSACTION READ ONLY")
            yield self.conn

    def execute(self, sql, params=None):
        with self.statement() as conn:
            assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else None

    def error(self, sql, params=None):
        with pytest.raises(psycopg.Error) as caught:
            self.execute(sql, params)
        return caught.value.diag

    def where(self):
        return "on a hot standby" if self.kind == "standby" else "in a read-only transaction"


@pytest.fixture(params=READERS)
def reader(request, servers, emulator):
    made = Reader(servers, request.param)
    emulator.reset()
    yield made
    made.conn.close()


@pytest.fixture
def primary(servers, emulator):
    with servers.connect(servers.primary) as conn:
        emulator.reset()
        yield conn


@pytest.fixture
def standby(servers, emulator):
    with servers.connect(servers.standby) as conn:
        emulator.reset()
        yield conn


SUPPORT_QUERY = ("SELECT feedback, s.sentiment, s.confidence FROM support, aws_comprehend.detect_sentiment(feedback, "
                 "'en') s ORDER BY s.confidence DESC, feedback")
WRAPPER_QUERY = "SELECT id, classify_event(event_type, event_day, amount) FROM events ORDER BY id"
EMBEDDINGS_QUERY = (f"SELECT id, aws_bedrock.invoke_model_get_embeddings('{TITAN}', 'application/json', 'embedding', "
                    "pg_catalog.json_build_object('inputText', body)::text) FROM passages ORDER BY id")
GENERATION_QUERY = ("SELECT id, aws_bedrock.invoke_model('anthropic.claude-v2', 'application/json', "
                    "'application/json', pg_catalog.json_build_object('prompt', E'\\n\\nHuman: Summarize: ' || body "
                    "|| E'\\n\\nAssistant:', 'max_tokens_to_sample', 50)::text) FROM passages ORDER BY id")
# each row's text twice, and one text in three rows: the statement cache sends each text once
CACHED_QUERY = ("SELECT t, (aws_comprehend.detect_sentiment(t, 'en')).sentiment, "
                "(aws_comprehend.detect_sentiment(t, 'en')).confidence "
                "FROM (VALUES (1, 'I love it'), (2, 'I hate it'), (3, 'I love it'), (4, 'I love it')) v(n, t) "
                "ORDER BY n")
# {(service, operation): (requests, items)} in batch mode, and row by row
READS = {
    "support": (SUPPORT_QUERY, {("comprehend", "BatchDetectSentiment"): (1, 10)},
                {("comprehend", "DetectSentiment"): (10, 10)}),
    "wrapper": (WRAPPER_QUERY, {("sagemaker", "InvokeEndpoint"): (2, 30)}, {("sagemaker", "InvokeEndpoint"): (30, 30)}),
    "embeddings": (EMBEDDINGS_QUERY, {("bedrock", "InvokeModel"): (PASSAGES, PASSAGES)},
                   {("bedrock", "InvokeModel"): (PASSAGES, PASSAGES)}),
    "generation": (GENERATION_QUERY, {("bedrock", "InvokeModel"): (PASSAGES, PASSAGES)},
                   {("bedrock", "InvokeModel"): (PASSAGES, PASSAGES)}),
    "statement cache": (CACHED_QUERY, {("comprehend", "BatchDetectSentiment"): (1, 2)},
                        {("comprehend", "DetectSentiment"): (2, 2)}),
}


@pytest.mark.parametrize("batch_mode", ["on", "off"])
def test_reads_answer_as_on_the_primary_with_the_same_requests(reader, primary, emulator, batch_mode):
    reader.conn.execute(f"SET aws_ml.batch_mode = {batch_mode}")
    primary.execute(f"SET aws_ml.batch_mode = {batch_mode}")
    for name, (sql, batched, row_by_row) in READS.items():
        want = row_by_row if batch_mode == "off" else batched
        emulator.reset()
        answer = primary.execute(sql).fetchall()
        assert requests(emulator) == want, name
        emulator.reset()
        assert reader.execute(sql) == answer, name
        assert requests(emulator) == want, name
    # the statement cache's hits are counted where they happened
    reader.conn.execute("SELECT aws_ml.stats_reset()")
    reader.execute(CACHED_QUERY)
    hits = reader.execute("SELECT requests, cache_hits FROM aws_ml.stats() WHERE service = 'comprehend'")
    assert hits == ([(1, 0)] if batch_mode == "on" else [(2, 6)])


@pytest.mark.parametrize("example", [test_bedrock.test_reference_claude_example_verbatim,
                                     test_bedrock.test_reference_titan_embedding_verbatim])
def test_the_reference_bedrock_examples(reader, emulator, aws_client, example):
    """test_bedrock's tests of the reference's Bedrock examples, as they are:
    one request, the emulator's own answer."""
    with reader.statement() as conn:
        example(conn, emulator, aws_client)


def test_a_member_of_aws_ml_on_the_standby(servers, standby, emulator):
    """A role granted aws_ml on the primary calls on the standby; it cannot
    set a locked setting there; its backfill of a table it may update is
    refused with 25006."""
    with servers.connect(servers.standby, MEMBER) as member:
        assert member.execute(SUPPORT_QUERY).fetchall() == standby.execute(SUPPORT_QUERY).fetchall()
        assert requests(emulator) == {("comprehend", "BatchDetectSentiment"): (2, 20)}
        emulator.reset()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            member.execute(f"SET aws_ml.comprehend_role_arn = '{ROLE}'")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            member.execute(BACKFILLS["materialize_sentiment"][0])
        assert requests(emulator) == {}


def test_stats_count_this_standbys_own_calls(standby, emulator):
    """aws_ml.stats() is the session's, on a standby too; the standby's
    pg_stat_user_functions counts its calls (docs/operations.md's query)."""
    standby.execute("SET track_functions = 'all'")
    standby.execute("SELECT aws_comprehend.detect_sentiment('Your support team is just awesome!', 'en')")
    standby.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment(ARRAY['good', 'bad', 'fine'], 'en')")
    assert standby.execute("SELECT service, operation, calls, rows, requests, errors FROM aws_ml.stats() "
                           "ORDER BY operation").fetchall() == [("comprehend", "BatchDetectSentiment", 1, 3, 1, 0),
                                                                ("comprehend", "DetectSentiment", 1, 1, 1, 0)]
    assert requests(emulator) == {("comprehend", "BatchDetectSentiment"): (1, 3),
                                  ("comprehend", "DetectSentiment"): (1, 1)}
    standby.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
    assert standby.execute("SELECT funcname, calls FROM pg_stat_user_functions WHERE schemaname = 'aws_comprehend' "
                           "ORDER BY funcname").fetchall() == [("batch_detect_sentiment", 1), ("detect_sentiment", 1)]
    standby.execute("SELECT aws_ml.stats_reset()")
    assert standby.execute("SELECT * FROM aws_ml.stats()").fetchall() == []


@pytest.mark.parametrize("batch_mode", ["on", "off"])
def test_parallel_plans_on_the_standby(primary, standby, emulator, batch_mode):
    """test_parallel's query under a forced parallel plan: the standby's
    workers and leader each send their rows, with the primary's answers."""
    serial = sorted(primary.execute(PARALLEL_QUERY).fetchall())
    standby.execute(f"SET aws_ml.batch_mode = {batch_mode}")
    standby.execute("SELECT aws_comprehend.detect_sentiment('load the module first', 'en')")
    force_parallel_plan(standby)
    emulator.reset()
    explained = explain_analyze(standby, PARALLEL_QUERY)
    assert workers_launched(explained) == [2]
    operation = "BatchDetectSentiment" if batch_mode == "on" else "DetectSentiment"
    counts = emulator.counters()["comprehend"]
    assert list(counts) == [operation] and counts[operation]["items"] == PARALLEL_ROWS
    if batch_mode == "off":
        assert counts[operation]["requests"] == PARALLEL_ROWS
        assert len(counts[operation]["pids"]) == 3 and str(standby.info.backend_pid) in counts[operation]["pids"]
    else:
        assert max(counts[operation]["batch_sizes"]) == 25 and len(counts[operation]["pids"]) >= 2
    emulator.reset()
    assert sorted(standby.execute(PARALLEL_QUERY).fetchall()) == serial


BACKFILLS = {
    "materialize_sentiment": ("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')", "notes",
                              "sentiment"),
    "materialize_embeddings": (f"CALL aws_bedrock.materialize_embeddings('passages', 'body', 'embedding', '{TITAN}')",
                               "passages", "embedding"),
}


def to_do(conn, table, column):
    return conn.execute(f"SELECT count(*) FROM {table} WHERE {column} IS NULL").fetchone()[0]


@pytest.mark.parametrize("procedure", BACKFILLS)
def test_a_backfill_is_refused_before_any_request(reader, emulator, procedure):
    """25006 naming the procedure and the table, with what to do, before any
    request: not PostgreSQL's refusal of the batch's SELECT ... FOR UPDATE.
    Inside a transaction block too (which would be 2D000 on a primary)."""
    call, table, column = BACKFILLS[procedure]
    before = to_do(reader.conn, table, column)
    hint = ("CALL it on the primary: its rows reach the standbys by replication." if reader.kind == "standby" else
            "CALL it in a read-write transaction: outside BEGIN READ ONLY, with default_transaction_read_only off.")
    for in_block in (False, True):
        with reader.conn.transaction(force_rollback=True) if in_block else contextlib.nullcontext():
            diag = reader.error(call)
        assert (diag.sqlstate, diag.message_primary, diag.message_hint) == (
            "25006", f"aws_ml: {procedure} cannot fill public.{table} {reader.where()}", hint)
    assert requests(emulator) == {}
    assert to_do(reader.conn, table, column) == before > 0


@pytest.mark.parametrize("sql", [CLINICIAN_NOTES_UPDATE,
                                 "INSERT INTO notes (id, body, sentiment) SELECT id + 1000, feedback, "
                                 "(aws_comprehend.detect_sentiment(feedback, 'en')).sentiment FROM support"])
def test_a_statement_that_writes_with_calls_is_refused_before_any_request(reader, emulator, sql):
    """The reference's UPDATE, and an INSERT ... SELECT: PostgreSQL's own
    25006 when the executor starts, before batch mode asks for anything."""
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        reader.execute(sql)
    assert requests(emulator) == {}


def test_a_cursor_fetches_as_on_the_primary(reader, primary, emulator):
    """A NO SCROLL cursor (batched, docs/batch-mode.md) on a standby or in a
    read-only transaction block: the primary's rows, for the primary's
    requests."""
    fetched, sent = [], []
    for conn in (primary, reader.conn):
        emulator.reset()
        with conn.transaction(force_rollback=True):
            if conn is reader.conn and reader.kind == "read_only_transaction":
                conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("DECLARE scores NO SCROLL CURSOR FOR SELECT id, (aws_comprehend.detect_sentiment(feedback, 'en')).* "
                         "FROM support ORDER BY id")
            fetched.append([conn.execute("FETCH 2 FROM scores").fetchall(),
                            conn.execute("FETCH 3 FROM scores").fetchall()])
        sent.append(requests(emulator))
    assert fetched[0] == fetched[1] and [len(rows) for rows in fetched[1]] == [2, 3]
    assert sent == [{("comprehend", "BatchDetectSentiment"): (1, 10)}] * 2


def test_a_read_only_transaction_still_fills_its_own_temporary_table(primary, emulator):
    """As PostgreSQL lets a read-only transaction write its temporary tables."""
    primary.execute("CREATE TEMPORARY TABLE scratch (body text, sentiment varchar, confidence real)")
    primary.execute("INSERT INTO scratch VALUES ('I love it'), ('I hate it'), ('fine')")
    primary.execute("SET default_transaction_read_only = on")
    primary.execute("CALL aws_comprehend.materialize_sentiment('scratch', 'body', 'en')")
    assert requests(emulator) == {("comprehend", "BatchDetectSentiment"): (1, 3)}
    assert to_do(primary, "scratch", "sentiment") == 0


def export(conn, sql, key):
    """rows_uploaded and files_uploaded of an export of sql as CSV to key."""
    return s3_support.export(conn, sql, key, "format csv", bucket=BUCKET)[:2]


def test_an_export_of_a_select_works_where_nothing_can_be_written(reader, primary, emulator, aws_client):
    """As RDS exports from read replicas: the object is what COPY writes on
    the primary; a query that calls aws_ml too. A query that writes is
    refused by PostgreSQL before any S3 request."""
    s3 = aws_client("s3")
    for sql, rows, sent in [("SELECT id, body FROM notes ORDER BY id", NOTES, {}),
                            ("SELECT feedback, (aws_comprehend.detect_sentiment(feedback, 'en')).sentiment "
                             "FROM support ORDER BY id", 10, {("comprehend", "BatchDetectSentiment"): (1, 10)})]:
        key = f"standby/{reader.kind}/{rows}.csv"
        emulator.reset()
        with reader.statement() as conn:
            assert export(conn, sql, key) == (rows, 1)
        assert requests(emulator) == {**sent, ("s3", "PUT"): (1, 1)}
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == copy_to_stdout(primary, sql, "format csv")
    emulator.reset()
    with reader.statement() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        export(conn, "INSERT INTO imported VALUES (1, 'x') RETURNING id", "standby/written.csv")
    assert requests(emulator) == {}


IMPORT = ("SELECT aws_s3.table_import_from_s3(%s, '', '(format csv)', "
          f"aws_commons.create_s3_uri('{BUCKET}', '{OBJECT}', 'us-east-1'))")


@pytest.mark.parametrize("table", ["imported", "public.imported (id, body)"])
def test_an_import_is_refused_before_any_download(reader, emulator, table):
    """25006 with what to do, before the transfer process sends its S3
    GetObject: not COPY FROM's refusal once the download has started."""
    diag = reader.error(IMPORT, (table,))
    assert requests(emulator) == {}
    assert reader.execute("SELECT * FROM aws_ml.stats()") == []
    hint = ("Import it on the primary: its rows reach the standbys by replication." if reader.kind == "standby" else
            "Import it in a read-write transaction: outside BEGIN READ ONLY, with default_transaction_read_only off.")
    assert (diag.sqlstate, diag.message_primary, diag.message_hint, diag.message_detail) == (
        "25006", f"aws_s3: table_import_from_s3 cannot import s3://{BUCKET}/{OBJECT} into {table} {reader.where()}",
        hint, None)
    assert reader.execute("SELECT count(*) FROM imported") == [(0,)]


def test_a_read_only_transaction_still_imports_into_its_own_temporary_table(primary, emulator):
    primary.execute("CREATE TEMPORARY TABLE imported (id int, body text)")  # pg_temp comes first
    primary.execute("SET default_transaction_read_only = on")
    for table in ("imported", "pg_temp.imported (id, body)"):
        assert primary.execute(IMPORT, (table,)).fetchone()[0].startswith(f'2 rows imported into relation "{table}"')
    assert requests(emulator) == {("s3", "GET"): (2, 2)}
    assert primary.execute("SELECT count(*) FROM pg_temp.imported").fetchone() == (4,)


def test_roles_are_assumed_on_the_standby(standby, emulator):
    """aws_ml's and aws_s3's role settings: STS AssumeRole once each, signed
    with the base credentials; the calls signed with the role's."""
    standby.execute(f"SET aws_ml.comprehend_role_arn = '{ROLE}'")
    standby.execute(f"SET aws_s3.role_arn = '{ROLE}-s3'")
    for i in range(3):
        standby.execute("SELECT aws_comprehend.detect_sentiment(%s, 'en')", (f"call {i} is fine",))
    export(standby, "SELECT 1", "standby/role.csv")
    counters = emulator.counters()
    assert counters["sts"]["AssumeRole"]["access_key_ids"] == {ACCESS_KEY_ID: 2}
    for service, operation, calls in (("comprehend", "DetectSentiment", 3), ("s3", "PUT", 1)):
        keys = counters[service][operation]["access_key_ids"]
        assert ACCESS_KEY_ID not in keys and sum(keys.values()) == calls


@pytest.mark.parametrize("hanging", ["SELECT aws_comprehend.detect_sentiment('this hangs', 'en')", SUPPORT_QUERY])
@pytest.mark.parametrize("stop", ["statement_timeout", "pg_cancel_backend"])
def test_a_hanging_call_on_the_standby_is_stopped(servers, standby, emulator, stop, hanging):
    """57014 for a call, and for the batch of the reference's query, whose
    one request hangs; the session goes on."""
    standby.execute("SELECT aws_comprehend.detect_sentiment('the client is cached', 'en')")
    emulator.reset()
    emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
    stopper = None
    if stop == "statement_timeout":
        standby.execute("SET statement_timeout = '1s'")
    else:
        stopper = stop_when(lambda: servers.connect(servers.standby), standby.info.backend_pid,
                            requests_in_flight(emulator, "comprehend", 1), "the request to hang")
    with pytest.raises(psycopg.errors.QueryCanceled) as caught:
        standby.execute(hanging)
    if stopper:
        stopper.join()
    assert caught.value.diag.message_primary == ("canceling statement due to statement timeout"
                                                 if stopper is None else "canceling statement due to user request")
    assert_nothing_left_in_flight(emulator, "comprehend", 1)
    emulator.clear_faults()
    standby.execute("RESET statement_timeout")
    assert standby.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone() \
        == ("POSITIVE",)


CONNECTION_ENDED = "the server closed the connection"


def next_statement(session, standby):
    """The answer of a call in session, or CONNECTION_ENDED. The startup
    process signals a conflicting backend again every few milliseconds until
    its transaction has ended; one signal that arrives after the backend has
    begun to abort the cancelled statement, and before its transaction has
    ended, is taken at the next command read, where PostgreSQL ends the
    session (postgres.c, ProcessInterrupts: "RecoveryConflictPending &&
    DoingCommandRead"). That race is PostgreSQL's, for any statement."""
    try:
        return session.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone()
    except psycopg.OperationalError:
        assert session.closed
        assert "FATAL:  terminating connection due to conflict with recovery" in standby.server_log()
        return CONNECTION_ENDED


@pytest.mark.parametrize("batch_mode", ["off", "on"])
def test_a_recovery_conflict_stops_a_hanging_call(servers, emulator, batch_mode):
    """The primary drops a table that a standby's statement reads while the
    statement's request hangs; the standby, told not to wait for its
    queries (max_standby_streaming_delay = 0), cancels the statement (40001)
    at once with PostgreSQL's message and DETAIL, its request stopped, and
    replays on. Row by row the session normally stays (next_statement). In batch mode the request is asked for inside a subtransaction
    (batch/ask.c), and PostgreSQL ends a session whose recovery conflict
    comes inside a subtransaction (postgres.c, RecoveryConflictInterrupt):
    the connection is lost (docs/operations.md says so)."""
    # hot_standby_feedback: no conflict with the primary's vacuum, only the DROP
    standby = new_standby(emulator, servers.primary, max_standby_streaming_delay="0", hot_standby_feedback="on")
    try:
        with servers.connect(servers.primary) as primary, servers.connect(standby) as session:
            primary.execute("CREATE TABLE dropped (body text)")
            primary.execute("INSERT INTO dropped VALUES ('I love it')")
            replayed(primary, session)
            session.execute(f"SET aws_ml.batch_mode = {batch_mode}")
            session.execute("SELECT aws_comprehend.detect_sentiment('the client is cached', 'en')")
            emulator.reset()
            emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
            thread, failed = run_in_thread(session, "SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
                                                    "FROM dropped")
            wait_until(requests_in_flight(emulator, "comprehend", 1), "the request to hang")
            primary.execute("DROP TABLE dropped")
            thread.join()
            [error] = failed
            stopped = "canceling statement" if batch_mode == "off" else "terminating connection"
            assert (error.diag.sqlstate, error.diag.message_primary, error.diag.message_detail) == (
                "40001", f"{stopped} due to conflict with recovery", "User was holding a relation lock for too long.")
            assert_nothing_left_in_flight(emulator, "comprehend", 1)
            emulator.clear_faults()
            assert session.closed == (batch_mode == "on")
            with servers.connect(standby) as other:
                replayed(primary, other)
                assert other.execute("SELECT pg_catalog.to_regclass('dropped')").fetchone() == (None,)
            if batch_mode == "off":
                assert next_statement(session, standby) in (("POSITIVE",), CONNECTION_ENDED)
    finally:
        standby.stop()


@pytest.mark.parametrize("promote", ["pg_ctl promote", "pg_promote()"])
def test_a_session_of_a_promoted_standby_writes(servers, emulator, promote):
    """A session opened on a standby: refused, then the standby promoted
    (pg_ctl promote, or pg_promote() from another session), then in that
    same session the backfill fills every row and the import imports, with
    the requests of a primary."""
    promoted = new_standby(emulator, servers.primary)
    try:
        with servers.connect(servers.primary) as primary, servers.connect(promoted) as session:
            replayed(primary, session)
            to_fill = to_do(session, "notes", "sentiment")
            call = BACKFILLS["materialize_sentiment"][0]
            emulator.reset()
            for sql, params in ((call, None), (IMPORT, ("imported",))):
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    session.execute(sql, params)
            assert requests(emulator) == {}
            assert session.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment") \
                .fetchone() == ("POSITIVE",)
            if promote == "pg_ctl promote":
                promoted.promote()
            else:
                with servers.connect(promoted) as other:
                    assert other.execute("SELECT pg_catalog.pg_promote()").fetchone() == (True,)
            assert session.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone() == (False,)
            emulator.reset()
            session.execute(call)
            assert to_do(session, "notes", "sentiment") == 0
            assert session.execute(IMPORT, ("imported",)).fetchone()[0].startswith('2 rows imported')
            assert requests(emulator) == {("comprehend", "BatchDetectSentiment"): (2, to_fill),
                                          ("s3", "GET"): (1, 1)}
            assert to_fill == NOTES
    finally:
        promoted.stop()
