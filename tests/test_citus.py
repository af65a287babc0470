"""aws_ml on a local Citus cluster (a coordinator and two workers, citus and
aws_ml preloaded on each, as docs/scaling.md says): the reference's SQL on
distributed tables, pushed down and batched on the workers, with the same
answers as on a plain table; the clinician UPDATE's documented form; the
backfills on distributed and reference tables; settings and roles on every
node. Requests are counted with the emulator's counters."""
import datetime
import math
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.citus_cluster import CitusCluster
from tests.cluster import pg_bindir
from tests.conftest import ACCESS_KEY_ID, ROOT, counter, new_cluster, wait_until
from tests.test_docs import run_sql_blocks
from tests.reference import ANALYZE_COMPANY, CLASSIFY_EVENT_2, CLASSIFY_EVENT_4, CLINICIAN_NOTES_UPDATE, \
    REGRESSION_MODEL

pytestmark = pytest.mark.slow  # a coordinator and two workers of its own

SHARDS = 32
SENTIMENT_QUERY = ("SELECT feedback, s.sentiment,s.confidence FROM {table},aws_comprehend.detect_sentiment(feedback, "
                   "'en') s ORDER BY s.confidence DESC")
DOCUMENTED_CLINICIAN_UPDATE = """WITH scored AS (
    SELECT id, (aws_comprehend.detect_sentiment(french_notes, 'fr')).*
    FROM clinician_notes
    WHERE clinician_notes.french_notes IS NOT NULL AND
          LENGTH(TRIM(clinician_notes.french_notes)) > 0 AND
          clinician_notes.sentiment IS NULL)
UPDATE clinician_notes SET sentiment = scored.sentiment, confidence = scored.confidence
FROM scored WHERE clinician_notes.id = scored.id"""
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def citus(emulator):
    pkglibdir = subprocess.check_output([str(pg_bindir() / "pg_config"), "--pkglibdir"], text=True).strip()
    assert (Path(pkglibdir) / "citus.so").exists(), f"Citus is not installed in {pkglibdir}: run scripts/build-citus"
    cluster = CitusCluster(lambda **settings: new_cluster(emulator, **settings)).start()
    with cluster.connect() as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
    yield cluster
    cluster.stop()


@pytest.fixture
def coordinator(citus, emulator):
    emulator.reset()
    with citus.connect() as conn:
        yield conn


def text(i, language="en"):
    """Distinct texts of every sentiment; every 10th NULL and every 10th (offset 5) blank."""
    if i % 10 == 0:
        return None
    if i % 10 == 5:
        return "   "
    mood = {"en": ("I love it", "I hate it", "It is fine", "What a wonderful day"),
            "fr": ("j'adore", "je déteste", "c'est correct", "quelle belle journée")}[language][i % 4]
    return f"note {i}: {mood}."


def make_table(conn, name, columns, rows, distributed=True, shards=SHARDS):
    """name (id int PRIMARY KEY, columns...) holding rows (tuples of the
    columns after id, the rest NULL), distributed by id, a reference table
    (distributed="reference") or plain."""
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, {columns})")
    if distributed == "reference":
        conn.execute(f"SELECT create_reference_table('{name}')")
    elif distributed:
        conn.execute(f"SELECT create_distributed_table('{name}', 'id', shard_count => {shards})")
    if not rows:
        return name
    filled = [row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum LIMIT %s",
        (name, 1 + len(rows[0])))]
    with conn.cursor() as cur:
        with cur.copy(f"COPY {name} ({', '.join(filled)}) FROM STDIN") as copy:
            for i, row in enumerate(rows):
                copy.write_row((i, *row))
    return name


def rows_per_shard(conn, table, where="true"):
    """{shard id: rows of table matching where}."""
    return dict(conn.execute(f"SELECT get_shard_id_for_distribution_column('{table}', id), count(*) FROM {table} "
                             f"WHERE {where} GROUP BY 1").fetchall())


def node_of_shards(conn, table):
    return dict(conn.execute(
        "SELECT s.shardid, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) "
        "JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = %s::regclass", (table,)).fetchall())


def worker_plan(conn, query):
    return "\n".join(row[0] for row in conn.execute(f"EXPLAIN (VERBOSE, COSTS OFF) {query}"))


def test_create_extension_propagates_to_every_worker_with_the_role_and_grants(citus, coordinator):
    coordinator.execute("DROP ROLE IF EXISTS analyst")
    coordinator.execute("CREATE ROLE analyst LOGIN")
    coordinator.execute("GRANT aws_ml TO analyst")
    for worker in citus.workers:
        with citus.connect(node=worker) as conn:
            assert dict(conn.execute("SELECT extname, extversion FROM pg_extension WHERE extname IN "
                                     "('aws_ml', 'aws_commons', 'plpython3u')").fetchall()) == {
                "aws_ml": "2.2", "aws_commons": "1.1", "plpython3u": "1.0"}
            assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'aws_ml'").fetchone() == (False,)
            assert conn.execute("SELECT pg_has_role('analyst', 'aws_ml', 'MEMBER'), "
                                "has_function_privilege('analyst', 'aws_comprehend.detect_sentiment(varchar, "
                                "varchar, int)', 'EXECUTE'), has_function_privilege('public', "
                                "'aws_comprehend.detect_sentiment(varchar, varchar, int)', 'EXECUTE')"
                                ).fetchone() == (True, True, False)


@pytest.fixture(scope="module")
def support_tables(citus):
    """The reference's support table, 3,000 rows of feedback, distributed and plain."""
    feedback = [(text(i) if i % 5 else f"note {i}: Thank you for the excellent customer support!",)
                for i in range(3000)]
    with citus.connect() as conn:
        make_table(conn, "support", "feedback text", feedback)
        make_table(conn, "support_plain", "feedback text", feedback, distributed=False)


@pytest.fixture
def support(support_tables, coordinator):
    return coordinator


def test_the_sentiment_query_is_batched_on_the_workers_with_a_plain_tables_answers(support, emulator):
    plain = support.execute(SENTIMENT_QUERY.format(table="support_plain")).fetchall()
    emulator.reset()
    distributed = support.execute(SENTIMENT_QUERY.format(table="support")).fetchall()
    assert sorted(distributed, key=str) == sorted(plain, key=str)
    assert [row[2] for row in distributed] == [row[2] for row in plain]  # ORDER BY s.confidence DESC
    # A shard of n rows needs ceil(n / 25) requests at least, and may send no
    # more: the total of those bounds holds each shard to its own.
    per_shard = rows_per_shard(support, "support")
    assert len(per_shard) == SHARDS
    batches = counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "batch_sizes")
    assert len(batches) == sum(math.ceil(rows / 25) for rows in per_shard.values())
    assert max(batches) == 25 and sum(batches) == 3000
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0

    plan = worker_plan(support, SENTIMENT_QUERY.format(table="support"))
    assert "Custom Scan (Citus Adaptive)" in plan and f"Task Count: {SHARDS}" in plan
    assert "Custom Scan (AwsMlBatch)" in plan.split("->  Task")[1]


def test_aggregates_over_the_sentiments_of_a_distributed_table(support, emulator):
    query = ("SELECT s.sentiment, count(*), round(avg(s.confidence)::numeric, 5) FROM {table}, "
             "aws_comprehend.detect_sentiment(feedback, 'en') s GROUP BY 1 ORDER BY 1")
    plain = support.execute(query.format(table="support_plain")).fetchall()
    assert len(plain) >= 3
    emulator.reset()
    assert support.execute(query.format(table="support")).fetchall() == plain
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 3000
    assert "Custom Scan (AwsMlBatch)" in worker_plan(support, query.format(table="support")).split("->  Task")[1]


@pytest.fixture(scope="module")
def wrapper_tables(citus):
    """The reference's SageMaker functions (created on the coordinator, which
    gives them to the workers) and the table they score, distributed and plain."""
    with citus.connect() as conn:
        for definition in (CLASSIFY_EVENT_2, CLASSIFY_EVENT_4, REGRESSION_MODEL, ANALYZE_COMPANY):
            conn.execute(definition)
        # distinct rows: the statement cache would send a repeated row once
        events = [(i % 3, datetime.date(2024, 1, 1) + datetime.timedelta(days=i), None if i % 10 == 4 else i * 0.5,
                   [i * 0.25, -1.0, float(i % 7), 2.0], i * 1.5, (i % 13) * 0.75) for i in range(200)]
        columns = ("event_type int, event_day date, amount real, params real[], free_cash_flow numeric(18, 6), "
                   "debt numeric(18, 6)")
        make_table(conn, "events", columns, events)
        make_table(conn, "events_plain", columns, events, distributed=False)


@pytest.mark.parametrize("call, endpoint, model", [
    ("classify_event(event_type, event_day)", "sagemaker_model_endpoint_name", {"coef": [2.0, 1.0], "intercept": 3}),
    ("classify_event(event_type, event_day, amount)", "sagemaker_model_endpoint_name", {"coef": [1.0, 1.0, 2.0]}),
    ("regression_model(params)", "sagemaker_model_endpoint_name", {"coef": [0.25, -1.5, 2.0, 0.125], "intercept": 0.5}),
    ("(analyze_company(free_cash_flow, debt)).*", "endpt_name",
     {"coef": [[0.12, -0.05], [-0.2, 0.6]], "intercept": [0.02, 0.1]}),
], ids=["classify_event/2", "classify_event/4", "regression_model", "analyze_company"])
def test_the_sagemaker_wrappers_are_batched_on_the_workers_with_a_plain_tables_answers(
        wrapper_tables, coordinator, emulator, call, endpoint, model):
    emulator.register_endpoint(endpoint, model={"kind": "linear", **model})
    query = f"SELECT id, {call} FROM {{table}} ORDER BY id"
    plain = coordinator.execute(query.format(table="events_plain")).fetchall()
    assert len(plain) == 200 and all(row[1] is not None for row in plain)
    emulator.reset()
    assert coordinator.execute(query.format(table="events")).fetchall() == plain
    # a shard's rows (at most 25) in one request
    per_shard = rows_per_shard(coordinator, "events")
    assert max(per_shard.values()) <= 25
    assert sorted(counter(emulator.counters(), "sagemaker", "InvokeEndpoint", "batch_sizes")) == \
        sorted(per_shard.values())
    assert "Custom Scan (AwsMlBatch)" in worker_plan(coordinator, query.format(table="events")).split("->  Task")[1]


BEDROCK_QUERY = """SELECT id,
    aws_bedrock.invoke_model(model_id := 'anthropic.claude-v2', content_type := 'application/json',
        accept_type := 'application/json',
        model_input := json_build_object(
            'prompt', format(E'\\n\\nHuman: Context: %s \\n\\nQuestion: %s \\n\\nAssistant:', body,
                             'What is it about?'),
            'max_tokens_to_sample', 200)::text) AS answer,
    aws_bedrock.invoke_model_get_embeddings(model_id := 'amazon.titan-embed-text-v1',
        content_type := 'application/json', json_key := 'embedding',
        model_input := json_build_object('inputText', body)::text) AS embedding
FROM {table}"""


def test_both_bedrock_calls_in_the_select_list_and_aggregates_over_them(coordinator, emulator):
    bodies = [(f"Document {i} says that PostgreSQL {('scales out', 'batches requests', 'stores vectors')[i % 3]}.",)
              for i in range(60)]
    make_table(coordinator, "docs", "body text", bodies, shards=8)
    make_table(coordinator, "docs_plain", "body text", bodies, distributed=False)
    query = BEDROCK_QUERY + " ORDER BY id"
    plain = coordinator.execute(query.format(table="docs_plain")).fetchall()
    emulator.reset()
    assert coordinator.execute(query.format(table="docs")).fetchall() == plain
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 2 * 60
    assert "Custom Scan (AwsMlBatch)" in worker_plan(coordinator, query.format(table="docs")).split("->  Task")[1]

    aggregates = (f"SELECT id % 3, count(DISTINCT answer), round(sum(embedding[1])::numeric, 9), "
                  f"round(avg(cardinality(embedding))) FROM ({BEDROCK_QUERY}) scored GROUP BY 1 ORDER BY 1")
    plain = coordinator.execute(aggregates.format(table="docs_plain")).fetchall()
    assert len(plain) == 3 and plain[0][3] == 1536
    assert coordinator.execute(aggregates.format(table="docs")).fetchall() == plain


def run_in_thread(conn, sql):
    """Runs sql on conn in a thread; returns the thread and a list that gets the error, if any."""
    errors = []

    def run():
        try:
            conn.execute(sql)
        except psycopg.Error as error:
            errors.append(error)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def cancel_when(conn, coordinator, condition, sql):
    """Runs sql on conn and cancels it once condition() holds; the error it ended with."""
    thread, errors = run_in_thread(conn, sql)
    wait_until(lambda: condition() or not thread.is_alive(), "the statement to be under way")
    assert thread.is_alive(), errors
    coordinator.execute("SELECT pg_cancel_backend(%s::int)", (conn.info.backend_pid,))
    thread.join(WAIT_SECONDS)
    assert len(errors) == 1, errors
    return errors[0]


def requests_answered(emulator, service, operation):
    """Whether every request the emulator got has been answered (none left in flight)."""
    return counter(emulator.counters(), service, operation, "in_flight") == 0


def clinician_notes(conn, rows, schema="public", distributed=True):
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    notes = [(text(i, "fr"), None, None) for i in range(rows)]
    make_table(conn, f"{schema}.clinician_notes", "french_notes text, sentiment varchar, confidence real", notes,
               distributed)
    return sum(1 for note, _, _ in notes if note and note.strip())


def test_the_clinician_update_in_its_documented_form_fills_each_row_once_and_again_after_a_cancel(
        citus, coordinator, emulator):
    eligible = clinician_notes(coordinator, 10_000)
    clinician_notes(coordinator, 10_000, schema="plain", distributed=False)
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="must not be VOLATILE"):
        coordinator.execute(CLINICIAN_NOTES_UPDATE)
    coordinator.execute("SET search_path = plain")
    coordinator.execute(CLINICIAN_NOTES_UPDATE)  # verbatim on a plain table: the answers to match
    coordinator.execute("RESET search_path")

    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=20)
    with citus.connect() as runner:
        error = cancel_when(runner, coordinator,
                            lambda: counter(emulator.counters(), "comprehend", "BatchDetectSentiment") >= 10,
                            DOCUMENTED_CLINICIAN_UPDATE)
    assert error.sqlstate == "57014"
    wait_until(lambda: requests_answered(emulator, "comprehend", "BatchDetectSentiment"), "the requests in flight")
    assert coordinator.execute("SELECT count(*) FROM clinician_notes WHERE sentiment IS NOT NULL").fetchone() == (0,)

    emulator.reset()  # and its faults
    assert coordinator.execute(DOCUMENTED_CLINICIAN_UPDATE).rowcount == eligible
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == eligible
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0
    notes = "SELECT id, sentiment, confidence FROM {}.clinician_notes ORDER BY id"
    assert coordinator.execute(notes.format("public")).fetchall() == \
        coordinator.execute(notes.format("plain")).fetchall()
    emulator.reset()
    assert coordinator.execute(DOCUMENTED_CLINICIAN_UPDATE).rowcount == 0
    assert emulator.counters() == {}


@dataclass(frozen=True)
class Backfill:
    columns: str  # the output columns of the table notes (id, body, ...)
    output: str  # NULL until filled
    call: str
    service: str
    operation: str
    per_request: int  # texts
    batch_size: int


BACKFILLS = {
    "materialize_sentiment": Backfill(
        "sentiment varchar, confidence real, materialized_at timestamptz", "sentiment",
        "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 100)",
        "comprehend", "BatchDetectSentiment", 25, 100),
    "materialize_embeddings": Backfill(
        "embedding float8[]", "embedding",
        "CALL aws_bedrock.materialize_embeddings('notes', 'body', 'embedding', 'cohere.embed-english-v3', "
        "batch_size => 96)", "bedrock", "InvokeModel", 96, 96),
}


def backfills_running(citus):
    """How many backfills of shards the workers are running."""
    running = 0
    for worker in citus.workers:
        with citus.connect(node=worker) as conn:
            running += conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                    "AND query LIKE 'CALL aws\\_%%._materialize%%'").fetchone()[0]
    return running


@pytest.mark.parametrize("procedure", BACKFILLS)
def test_a_backfill_of_a_distributed_table_fills_each_row_once_on_the_workers_and_resumes_after_a_cancel(
        citus, coordinator, emulator, procedure):
    backfill = BACKFILLS[procedure]
    notes = [(text(i),) for i in range(10_000)]
    make_table(coordinator, "notes", f"body text, {backfill.columns}", notes)
    eligible = sum(1 for (note,) in notes if note and note.strip())

    def filled():
        return coordinator.execute(f"SELECT count(*) FROM notes WHERE {backfill.output} IS NOT NULL").fetchone()[0]

    def requests():
        return counter(emulator.counters(), backfill.service, backfill.operation)
    emulator.reset()
    emulator.set_faults(service=backfill.service, latency_ms=20)
    with citus.connect() as runner:
        error = cancel_when(runner, coordinator, lambda: requests() >= 20, backfill.call)
    assert error.sqlstate == "57014"
    wait_until(lambda: backfills_running(citus) == 0 and requests_answered(emulator, backfill.service,
                                                                           backfill.operation),
               "the workers' backfills to stop")
    done_first = filled()
    sent_first = counter(emulator.counters(), backfill.service, backfill.operation, "items")
    assert 0 < done_first < eligible
    assert 0 <= sent_first - done_first <= len(citus.workers) * backfill.batch_size  # a batch a node, at most

    emulator.reset()  # and its faults
    to_do = rows_per_shard(coordinator, "notes", f"{backfill.output} IS NULL AND btrim(body) <> ''")
    nodes = node_of_shards(coordinator, "notes")
    coordinator.execute(backfill.call)
    assert filled() == eligible
    counters = emulator.counters()
    assert counter(counters, backfill.service, backfill.operation, "items") == eligible - done_first
    # the requests went out from one backend on each worker, each its own shards'
    per_node = Counter()
    for shard, rows in to_do.items():
        per_node[nodes[shard]] += math.ceil(rows / backfill.per_request)
    assert set(per_node) == {worker.port for worker in citus.workers}
    pids = counters[backfill.service][backfill.operation]["pids"]
    assert str(coordinator.info.backend_pid) not in pids
    assert sorted(pids.values()) == sorted(per_node.values())

    emulator.reset()
    coordinator.execute(backfill.call)
    assert emulator.counters() == {}


def each_copy(citus, table, sql):
    """sql (%s: the table's shard) on each of a reference table's copies."""
    return [row[0] for row in citus.connect().execute(
        "SELECT result FROM run_command_on_placements(%s, %s) ORDER BY nodeport", (table, sql))]


@pytest.mark.parametrize("procedure", BACKFILLS)
def test_a_backfill_of_a_reference_table_writes_every_copy_alike(citus, coordinator, emulator, procedure):
    backfill = BACKFILLS[procedure]
    notes = [(text(i),) for i in range(300)]
    make_table(coordinator, "notes", f"body text, {backfill.columns}", notes, distributed="reference")
    make_table(coordinator, "notes_plain", f"body text, {backfill.columns}", notes, distributed=False)
    for table in ("notes", "notes_plain"):
        coordinator.execute(f"DELETE FROM {table} WHERE id % 3 = 1")
    # one copy compacted, so that the copies' ctids differ
    shard = coordinator.execute("SELECT shard_name('notes', shardid) FROM pg_dist_shard "
                                "WHERE logicalrelid = 'notes'::regclass").fetchone()[0]
    with citus.connect(node=citus.workers[0]) as worker:
        worker.execute(f"VACUUM FULL {shard}")
    eligible = coordinator.execute("SELECT count(*) FROM notes WHERE btrim(body) <> ''").fetchone()[0]
    coordinator.execute(backfill.call.replace("'notes'", "'notes_plain'"))
    emulator.reset()
    coordinator.execute(backfill.call)
    assert counter(emulator.counters(), backfill.service, backfill.operation, "items") == eligible
    outputs = f"SELECT id, {backfill.output} FROM {{}} ORDER BY id"
    assert coordinator.execute(outputs.format("notes")).fetchall() == \
        coordinator.execute(outputs.format("notes_plain")).fetchall()
    digest = (f"SELECT count({backfill.output}) || ' ' || md5(string_agg(id || ':' || {backfill.output}::text, ',' "
              "ORDER BY id)) FROM %s")
    copies = each_copy(citus, "notes", digest)
    assert len(copies) == 3 and len(set(copies)) == 1 and copies[0].startswith(f"{eligible} ")


def test_a_reference_table_without_a_one_column_primary_key_is_refused_before_any_request(coordinator, emulator):
    coordinator.execute("DROP TABLE IF EXISTS tags")
    coordinator.execute("CREATE TABLE tags (a int, b int, body text, sentiment varchar, confidence real, "
                        "PRIMARY KEY (a, b))")
    coordinator.execute("SELECT create_reference_table('tags')")
    coordinator.execute("INSERT INTO tags VALUES (1, 1, 'I love it')")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as caught:
        coordinator.execute("CALL aws_comprehend.materialize_sentiment('tags', 'body', 'en')")
    assert caught.value.diag.message_primary == ("aws_ml: materialize_sentiment names the rows of public.tags by its "
                                                 "primary key, and it has no primary key of one column")
    assert caught.value.diag.message_detail == "It is a Citus reference table, whose copies' ctids differ."
    assert "docs/scaling.md" in caught.value.diag.message_hint
    assert emulator.counters() == {}


def test_an_error_on_a_worker_reaches_the_caller_with_its_sqlstate_detail_and_hint(citus, coordinator, emulator):
    make_table(coordinator, "notes", f"body text, {BACKFILLS['materialize_sentiment'].columns}",
               [(text(i),) for i in range(400)])
    emulator.set_faults(service="comprehend", error_code="AccessDeniedException", error_status=403, error_every=1)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        coordinator.execute(BACKFILLS["materialize_sentiment"].call)
    diag = caught.value.diag
    assert diag.message_primary.startswith("aws_ml: materialize_sentiment stopped at the row at ctid (0,1) of "
                                           "public.notes_")
    assert ": Comprehend BatchDetectSentiment failed: AccessDeniedException" in diag.message_primary
    assert diag.message_primary.endswith(tuple(f"(on node 127.0.0.1:{worker.port})" for worker in citus.workers))
    assert diag.message_detail == "AWS error code: AccessDeniedException (HTTP 403)"
    assert diag.message_hint.endswith("The batches before it are committed; CALL again to go on with the rows still "
                                      "to do.")
    assert coordinator.execute("SELECT count(sentiment) FROM notes").fetchone() == (0,)


def set_on(citus, nodes, setting, value):
    """ALTER SYSTEM on each of nodes and waits until new sessions there have it."""
    for node in nodes:
        with citus.connect(node=node) as conn:
            if value is None:
                conn.execute(f"ALTER SYSTEM RESET {setting}")
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.SQL(setting), sql.Literal(value)))
            conn.execute("SELECT pg_reload_conf()")

    def applied(node):
        with citus.connect(node=node) as conn:
            return conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()[0] == (value or "")
    wait_until(lambda: all(applied(node) for node in nodes), f"{setting} on every node")


@pytest.fixture
def settings_restored(citus):
    yield
    for setting in ("aws_ml.comprehend_role_arn", "aws_ml.region"):
        for node in citus.nodes:
            with citus.connect(node=node) as conn:
                conn.execute(f"ALTER SYSTEM RESET {setting}")
                conn.execute("SELECT pg_reload_conf()")


def test_a_worker_without_a_region_fails_the_query_with_55000(citus, coordinator, emulator, settings_restored):
    make_table(coordinator, "notes", "body text", [(text(i),) for i in range(100)], shards=4)
    set_on(citus, citus.workers[:1], "aws_ml.region", "")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        coordinator.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM notes")
    assert caught.value.diag.message_primary == "aws_ml: no AWS Region is configured"
    assert caught.value.diag.message_hint.startswith("Set aws_ml.region in postgresql.conf")


def test_a_backfill_refuses_workers_whose_settings_differ_from_the_callers(citus, coordinator, emulator,
                                                                           settings_restored):
    make_table(coordinator, "notes", f"body text, {BACKFILLS['materialize_sentiment'].columns}",
               [(text(i),) for i in range(100)], shards=4)
    set_on(citus, citus.workers[1:], "aws_ml.comprehend_role_arn", "arn:aws:iam::123456789012:role/other")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        coordinator.execute(BACKFILLS["materialize_sentiment"].call)
    assert caught.value.diag.message_primary == (
        f"aws_ml: materialize_sentiment: the aws_ml settings of node 127.0.0.1:{citus.workers[1].port} differ from "
        "this node's: aws_ml.comprehend_role_arn")
    assert emulator.counters() == {}


def test_a_role_set_on_every_node_signs_every_workers_requests(citus, coordinator, emulator, settings_restored):
    make_table(coordinator, "notes", "body text", [(text(i),) for i in range(400)], shards=4)
    set_on(citus, citus.nodes, "aws_ml.comprehend_role_arn", "arn:aws:iam::123456789012:role/aurora-comprehend")
    coordinator.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM notes").fetchall()
    counters = emulator.counters()
    assert set(counters["sts"]["AssumeRole"]["access_key_ids"]) == {ACCESS_KEY_ID}
    signed_by = counters["comprehend"]["BatchDetectSentiment"]["access_key_ids"]
    assert ACCESS_KEY_ID not in signed_by and all(key.startswith("ASIA") for key in signed_by)


def test_a_member_of_aws_ml_runs_the_query_and_a_backfill_through_every_node_and_others_cannot(
        citus, coordinator, emulator):
    for role in ("analyst", "tenant"):
        coordinator.execute(f"DROP OWNED BY {role}" if coordinator.execute(
            "SELECT FROM pg_roles WHERE rolname = %s", (role,)).fetchone() else "SELECT")
        coordinator.execute(f"DROP ROLE IF EXISTS {role}")
        coordinator.execute(f"CREATE ROLE {role} LOGIN")
    coordinator.execute("GRANT aws_ml TO analyst")
    coordinator.execute("GRANT CREATE ON SCHEMA public TO analyst")
    with citus.connect(user="analyst") as analyst:
        make_table(analyst, "analyst_notes", f"body text, {BACKFILLS['materialize_sentiment'].columns}",
                   [(text(i),) for i in range(500)])
        analyst.execute("GRANT SELECT ON analyst_notes TO tenant")
        emulator.reset()
        analyst.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM analyst_notes").fetchall()
        analyst.execute(BACKFILLS["materialize_sentiment"].call.replace("'notes'", "'analyst_notes'"))
        assert analyst.execute("SELECT count(sentiment) FROM analyst_notes").fetchone() == (400,)
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 2 * 400
    emulator.reset()
    with citus.connect(user="tenant") as tenant:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenant.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM analyst_notes")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenant.execute("CALL aws_comprehend._materialize_sentiment_shards(ARRAY['analyst_notes'::regclass], "
                           "'body', 'en', 'sentiment', 'confidence', 100)")
    assert emulator.counters() == {}


def test_names_that_need_quoting_reach_the_shards_whole(coordinator, emulator):
    table = '"Notes ""of"" l\'été, 1"'
    coordinator.execute(f"DROP TABLE IF EXISTS {table}")
    coordinator.execute(f'CREATE TABLE {table} (id int PRIMARY KEY, "Bo,dy" text, "s""" varchar, c real)')
    coordinator.execute(f"SELECT create_distributed_table($${table}$$, 'id', shard_count => 4)")
    coordinator.execute(f'INSERT INTO {table} SELECT i, \'text \' || i FROM generate_series(1, 100) i')
    coordinator.execute("CALL aws_comprehend.materialize_sentiment(%s, 'Bo,dy', 'en', 's\"', 'c')", (table,))
    assert coordinator.execute(f'SELECT count("s""") FROM {table}').fetchone() == (100,)
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 100


def test_the_shards_procedure_called_directly_checks_its_arguments(coordinator, emulator):
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        coordinator.execute("CALL aws_comprehend._materialize_sentiment_shards(NULL, 'body', 'en', 'sentiment', "
                            "'confidence', 100)")
    coordinator.execute("BEGIN")
    with pytest.raises(psycopg.errors.InvalidTransactionTermination) as caught:
        coordinator.execute("CALL aws_comprehend._materialize_sentiment_shards(ARRAY['pg_class'::regclass], 'relname', "
                            "'en', 'sentiment', 'confidence', 100)")
    assert caught.value.diag.message_primary == ("aws_ml: materialize_sentiment commits every batch, so it cannot run "
                                                 "inside a transaction block")
    coordinator.execute("ROLLBACK")
    assert emulator.counters() == {}


BEFORE_FIRST_CALL = """DO $$
import sys
plpy.notice(f"{'aws_ml.comprehend' in sys.modules} {'botocore.client' in sys.modules}")
$$ LANGUAGE plpython3u"""


def test_a_new_backend_on_a_worker_has_the_package_before_its_first_call(citus):
    for worker in citus.workers:
        with citus.connect(node=worker) as conn:
            notices = []
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
            conn.execute(BEFORE_FIRST_CALL)
            assert notices == ["True True"]
        assert "could not preload" not in worker.server_log()


def test_requests_in_flight_add_up_over_the_workers_and_their_shard_tasks(citus, coordinator, emulator):
    make_table(coordinator, "notes", "body text", [(f"note {i}: I love it.",) for i in range(1600)], shards=4)
    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=100)
    coordinator.execute("SET citus.max_adaptive_executor_pool_size = 1")  # one shard task at a time on each worker
    coordinator.execute("SET citus.propagate_set_commands = 'local'")
    with coordinator.transaction():
        coordinator.execute("SET LOCAL aws_ml.max_concurrency = 2")  # on the workers too
        coordinator.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM notes").fetchall()
    in_flight = counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "max_in_flight")
    assert in_flight == len(citus.workers) * 1 * 2


def test_an_export_of_a_query_over_a_distributed_table_and_the_documented_import_into_one(
        citus, coordinator, emulator, aws_client):
    coordinator.execute("CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE")
    aws_client("s3").create_bucket(Bucket="citus-exports")
    feedback = [(text(i),) for i in range(500)]
    make_table(coordinator, "feedback", "feedback text", feedback)
    make_table(coordinator, "feedback_plain", "feedback text", feedback, distributed=False)
    query = ("SELECT id, feedback, s.sentiment, s.confidence FROM {table}, "
             "aws_comprehend.detect_sentiment(feedback, 'en') s ORDER BY id")
    with coordinator.cursor() as cursor:
        with cursor.copy(f"COPY ({query.format(table='feedback_plain')}) TO STDOUT WITH (format csv)") as copy:
            expected = b"".join(bytes(chunk) for chunk in copy)
    emulator.reset()
    assert coordinator.execute(
        "SELECT rows_uploaded, files_uploaded FROM aws_s3.query_export_to_s3(%s, "
        "aws_commons.create_s3_uri('citus-exports', 'support.csv', 'us-east-1'), 'format csv')",
        (query.format(table="feedback"),)).fetchone() == (500, 1)
    assert aws_client("s3").get_object(Bucket="citus-exports", Key="support.csv")["Body"].read() == expected
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 400

    import_from = ("SELECT aws_s3.table_import_from_s3({}, '', 'format csv', "
                   "aws_commons.create_s3_uri('citus-exports', 'support.csv', 'us-east-1'))")
    make_table(coordinator, "scored", "feedback text, sentiment varchar, confidence real", [])
    emulator.reset()
    with pytest.raises(psycopg.errors.FeatureNotSupported) as caught:
        coordinator.execute(import_from.format("'scored'"))
    assert caught.value.diag.message_primary.startswith("aws_s3: cannot import into scored, a Citus table: ")
    assert caught.value.diag.context is None
    assert emulator.counters() == {}
    with coordinator.transaction():  # the documented form
        coordinator.execute("CREATE TEMP TABLE scored_import (LIKE scored) ON COMMIT DROP")
        coordinator.execute(import_from.format("'scored_import'"))
        coordinator.execute("INSERT INTO scored SELECT * FROM scored_import")
    assert coordinator.execute("SELECT count(*), count(DISTINCT id), count(sentiment) FROM scored").fetchone() == \
        (500, 500, 400)
    assert sum(rows_per_shard(coordinator, "scored").values()) == 500


def test_the_sql_of_docs_scaling_md_runs_on_the_cluster(citus, coordinator, emulator, aws_client,
                                                        settings_restored):
    aws_client("s3").create_bucket(Bucket="my-training-bucket")
    coordinator.execute("DROP SCHEMA IF EXISTS docs_scaling CASCADE")
    coordinator.execute("CREATE SCHEMA docs_scaling")
    # 8 shards rather than 32: the same SQL, fewer worker backends to start
    run_sql_blocks(ROOT / "docs" / "scaling.md", citus.coordinator.bindir / "psql", citus.coordinator.conninfo(),
                   prologue="SET search_path = docs_scaling, public;\nSET citus.shard_count = 8;\n")
    coordinator.execute("DROP SCHEMA docs_scaling CASCADE")


def test_a_backfill_of_a_partitioned_distributed_table_fills_every_partitions_shards(citus, coordinator, emulator):
    coordinator.execute("DROP TABLE IF EXISTS events_by_month")
    coordinator.execute("CREATE TABLE events_by_month (id int, month int, body text, sentiment varchar, "
                        "confidence real, PRIMARY KEY (id, month)) PARTITION BY LIST (month)")
    for month in (1, 2, 3):
        coordinator.execute(f"CREATE TABLE events_month_{month} PARTITION OF events_by_month FOR VALUES IN ({month})")
    coordinator.execute("SELECT create_distributed_table('events_by_month', 'id', shard_count => 4)")
    coordinator.execute("INSERT INTO events_by_month SELECT i, 1 + i % 3, 'event ' || i || ': I love it' "
                        "FROM generate_series(1, 300) i")
    emulator.reset()
    coordinator.execute("CALL aws_comprehend.materialize_sentiment('events_by_month', 'body', 'en')")
    assert coordinator.execute("SELECT month, count(sentiment) FROM events_by_month GROUP BY 1 ORDER BY 1"
                               ).fetchall() == [(1, 100), (2, 100), (3, 100)]
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 300
    assert len(emulator.counters()["comprehend"]["BatchDetectSentiment"]["pids"]) == len(citus.workers)


def test_a_nodes_own_error_reaches_the_caller_with_its_sqlstate_and_the_batch_is_rolled_back(
        citus, coordinator, emulator):
    make_table(coordinator, "notes", f"body text, {BACKFILLS['materialize_sentiment'].columns}",
               [("I love it.",) if i == 7 else (f"note {i}: it is fine.",) for i in range(200)], shards=4)
    coordinator.execute("ALTER TABLE notes ADD CONSTRAINT not_positive CHECK (sentiment <> 'POSITIVE')")
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        coordinator.execute(BACKFILLS["materialize_sentiment"].call)
    assert caught.value.diag.message_primary.startswith('aws_ml: new row for relation "notes_')
    assert 'violates check constraint "not_positive_' in caught.value.diag.message_primary
    assert caught.value.diag.message_detail.startswith("Failing row contains (7, I love it., POSITIVE, ")
    assert caught.value.diag.message_primary.endswith(
        tuple(f"(on node 127.0.0.1:{worker.port})" for worker in citus.workers))
    shard_of_7 = coordinator.execute("SELECT get_shard_id_for_distribution_column('notes', 7)").fetchone()[0]
    in_that_shard = rows_per_shard(coordinator, "notes")[shard_of_7]
    # the shard's one batch (100 rows, or fewer) rolled back: none of its rows filled
    filled = rows_per_shard(coordinator, "notes", "sentiment IS NOT NULL")
    assert shard_of_7 not in filled and in_that_shard <= 100
