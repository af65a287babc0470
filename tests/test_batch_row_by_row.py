"""Batch mode gives row by row's answers, errors and side effects, and a bill
close to row by row's: the reproductions of issue 20, each run both ways in a
session that has loaded the module already (the planner's path; the first
statement of a session takes the executor's, tested in test_batch_mode.py)."""
import json

import psycopg
import pytest

from tests.conftest import counter

TITAN = "amazon.titan-embed-text-v1"


@pytest.fixture
def conn(db):
    """A session whose first aws_ml call is behind it."""
    db.execute("SELECT aws_comprehend.detect_sentiment(NULL, 'en')")
    return db


def run(conn, emulator, mode, sql, setup=()):
    """(rows or the error's (SQLSTATE, message), documents sent) of sql in mode."""
    conn.execute(f"SET aws_ml.batch_mode = {mode}")
    for statement in setup:
        conn.execute(statement)
    emulator.reset()
    try:
        result = conn.execute(sql).fetchall()
    except psycopg.Error as error:
        result = (error.diag.sqlstate, error.diag.message_primary)
    return result, documents(emulator)


def documents(emulator):
    """What the services were asked for: Comprehend documents, SageMaker rows, Bedrock requests."""
    counters = emulator.counters()
    return (counter(counters, "comprehend", "BatchDetectSentiment", "items")
            + counter(counters, "comprehend", "DetectSentiment", "items")
            + counter(counters, "sagemaker", "InvokeEndpoint", "items")
            + counter(counters, "bedrock", "InvokeModel"))


def both_ways(conn, emulator, sql, setup=()):
    """sql row by row, then in batch mode, from the same setup: ((result, documents), ...)."""
    return run(conn, emulator, "off", sql, setup), run(conn, emulator, "on", sql, setup)


@pytest.fixture
def small(conn):
    conn.execute("DROP TABLE IF EXISTS small; DROP SEQUENCE IF EXISTS s")
    conn.execute("CREATE TABLE small AS SELECT n AS id, 'I love it ' || n AS body FROM generate_series(1, 40) n")
    conn.execute("CREATE SEQUENCE s")
    yield conn
    conn.execute("DROP TABLE small; DROP SEQUENCE s")


# --- 1. A volatile expression is evaluated once a row, in row order ---------

def test_a_call_in_an_aggregate_over_nextval_evaluates_nextval_once_a_row(small, emulator):
    sql = ("SELECT count(*) FILTER (WHERE k % 2 = 0), sum(CASE WHEN (aws_comprehend.detect_sentiment(CASE WHEN "
           "k % 2 = 0 THEN 'I love it' ELSE 'I hate it' END, 'en')).sentiment = 'POSITIVE' THEN 1 ELSE 0 END) "
           "FROM (SELECT nextval('s') AS k FROM small) x")
    results = []
    for mode in ("off", "on"):
        small.execute("SELECT setval('s', 1, false)")
        results.append((run(small, emulator, mode, sql)[0], small.execute("SELECT last_value FROM s").fetchone()))
    assert results[0] == results[1] == ([(20, 20)], (40,))


def test_a_volatile_group_key_read_by_a_call_in_an_aggregate_logs_once_a_row(small, emulator):
    small.execute("DROP TABLE IF EXISTS seen")
    small.execute("CREATE TABLE seen (id int)")
    small.execute("CREATE OR REPLACE FUNCTION seen(i int) RETURNS int VOLATILE LANGUAGE sql AS "
                  "$$ INSERT INTO seen VALUES (i) RETURNING i % 3 $$")
    sql = ("SELECT k, count((aws_comprehend.detect_sentiment('I love ' || k, 'en')).sentiment) "
           "FROM (SELECT seen(id) AS k FROM small) x GROUP BY k ORDER BY k")
    logs = []
    for mode in ("off", "on"):
        small.execute("TRUNCATE seen")
        result = run(small, emulator, mode, sql)[0]
        logs.append((result, small.execute("SELECT array_agg(id ORDER BY id) FROM seen").fetchone()))
    assert logs[0] == logs[1]
    assert logs[0][1] == (list(range(1, 41)),)
    small.execute("DROP TABLE seen; DROP FUNCTION seen(int)")


def test_random_in_a_subquery_column_is_drawn_once_a_row(small, emulator):
    sql = ("SELECT count(*), sum(r), count((aws_comprehend.detect_sentiment(body || r::text, 'en')).sentiment) "
           "FROM (SELECT random() AS r, body FROM small) x")
    row_by_row, batched = both_ways(small, emulator, sql, setup=["SELECT setseed(0.25)"])
    assert batched[0] == row_by_row[0]


# --- 2. A row the query never reaches never fails it ------------------------

@pytest.fixture
def events(conn):
    conn.execute("DROP TABLE IF EXISTS events")
    conn.execute("CREATE TABLE events AS SELECT n AS id, CASE WHEN n = 700 THEN '{\"text\": broken' ELSE "
                 "json_build_object('text', 'I love it ' || n)::text END AS payload FROM generate_series(1, 2000) n")
    yield conn
    conn.execute("DROP TABLE events")


@pytest.mark.parametrize("sql", [
    "SELECT id FROM events WHERE (aws_comprehend.detect_sentiment(payload::json->>'text', 'en')).sentiment "
    "= 'POSITIVE' LIMIT 5",
    "SELECT id FROM events WHERE (aws_comprehend.detect_sentiment(payload::json->>'text', 'en')).sentiment "
    "= 'POSITIVE' LIMIT (SELECT 690)",
    "SELECT EXISTS (SELECT 1 FROM events WHERE (aws_comprehend.detect_sentiment(payload::json->>'text', 'en'))"
    ".sentiment = 'POSITIVE')",
    "SELECT id, (aws_comprehend.detect_sentiment('row ' || 1 / (id - 700), 'en')).sentiment FROM events "
    "LIMIT (SELECT 650)",
    "SELECT id FROM events WHERE aws_sagemaker.invoke_endpoint('echo-row-count', NULL, VARIADIC CASE WHEN id = 60 "
    "THEN ARRAY[]::float8[] ELSE ARRAY[id, 1]::float8[] END) IS NOT NULL LIMIT (SELECT 40)",
], ids=["json_limit", "json_limit_in_the_batch", "json_exists", "division_by_zero", "empty_variadic"])
def test_a_row_the_query_never_reaches_never_fails_it(events, emulator, sql):
    row_by_row, batched = both_ways(events, emulator, sql)
    assert batched[0] == row_by_row[0]
    assert isinstance(row_by_row[0], list)


def test_a_row_the_query_reaches_fails_it_with_row_by_rows_error(events, emulator):
    sql = ("SELECT id FROM events WHERE (aws_comprehend.detect_sentiment(payload::json->>'text', 'en')).sentiment "
           "= 'POSITIVE'")
    row_by_row, batched = both_ways(events, emulator, sql)
    assert batched[0] == row_by_row[0] == ("22P02", "invalid input syntax for type json")
    # nothing after row 700 asked for: 699 documents, as row by row
    assert batched[1] == row_by_row[1] == 699


# --- 3. WHERE CURRENT OF ---------------------------------------------------

@pytest.mark.parametrize("scroll", ["NO SCROLL", ""], ids=["batched", "scrollable"])
def test_where_current_of_updates_the_row_the_cursor_is_on(small, emulator, scroll):
    small.execute("ALTER TABLE small ADD COLUMN sentiment text")
    small.execute(f"""CREATE OR REPLACE FUNCTION score_small() RETURNS void LANGUAGE plpgsql AS $$
        DECLARE r record; c {scroll} CURSOR FOR SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment
                                   FROM small;
        BEGIN FOR r IN c LOOP UPDATE small SET sentiment = r.sentiment || r.id WHERE CURRENT OF c; END LOOP; END $$""")
    for mode in ("on", "off"):
        small.execute("UPDATE small SET sentiment = NULL")
        small.execute(f"SET aws_ml.batch_mode = {mode}")
        emulator.reset()
        small.execute("SELECT score_small()")
        assert small.execute("SELECT count(*) FROM small WHERE sentiment = 'POSITIVE' || id").fetchone() == (40,)
        if mode == "on" and scroll:
            assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0
    with small.transaction():
        small.execute("SET aws_ml.batch_mode = on")
        small.execute(f"DECLARE c {scroll} CURSOR FOR SELECT id, "
                      "(aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM small")
        assert small.execute("FETCH 3 FROM c").fetchall()[-1][0] == 3
        small.execute("UPDATE small SET sentiment = 'third' WHERE CURRENT OF c")
    assert small.execute("SELECT id FROM small WHERE sentiment = 'third'").fetchall() == [(3,)]
    small.execute("DROP FUNCTION score_small()")


# --- 4. An inner-unique join keeps its join condition -----------------------

def test_an_inner_unique_nested_loop_keeps_its_join_filter(small, emulator):
    small.execute("DROP TABLE IF EXISTS labels")
    small.execute("CREATE TABLE labels (label text PRIMARY KEY, score int)")
    small.execute("INSERT INTO labels VALUES ('a', 1), ('b', 2), ('c', 3)")
    # PL/pgSQL, not inlined: its cost puts the call's condition first in the join filter
    small.execute("CREATE OR REPLACE FUNCTION lbl(t text) RETURNS text IMMUTABLE LANGUAGE plpgsql COST 100000 "
                  "AS $$ BEGIN RETURN (ARRAY['a', 'b', 'c'])[1 + length(t) % 3]; END $$")
    setup = [f"SET {name} = off" for name in ("enable_hashjoin", "enable_mergejoin", "enable_indexscan",
                                               "enable_bitmapscan")]
    sql = ("SELECT a.id, l.score FROM small a JOIN labels l ON l.label = lbl(a.body) AND "
           "(aws_comprehend.detect_sentiment(a.body || ' ' || l.label, 'en')).sentiment <> 'MIXED' ORDER BY a.id")
    row_by_row, batched = both_ways(small, emulator, sql, setup)
    assert batched[0] == row_by_row[0] and len(batched[0]) == 40
    small.execute("DROP TABLE labels; DROP FUNCTION lbl(text)")


# --- 5. A LATERAL function's value once a row --------------------------------

def test_a_lateral_function_read_twice_is_called_once_a_row(small, emulator):
    prompt = ("json_build_object('prompt', E'\\n\\nHuman: say ' || s.id || (aws_comprehend.detect_sentiment("
              "'I love ' || s.id, 'en')).sentiment || E'\\n\\nAssistant:', 'max_tokens_to_sample', 20)::text")
    sql = ("SELECT count(*), count(DISTINCT d), count(DISTINCT md5(d)), count(DISTINCT d || md5(d)) FROM small s, "
           f"LATERAL aws_bedrock.invoke_model('anthropic.claude-v2', 'application/json', 'application/json', {prompt}) d "
           "WHERE d IS NOT NULL")
    row_by_row, batched = both_ways(small, emulator, sql)
    assert batched[0] == row_by_row[0] == [(40, 40, 40, 40)]
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 40


# --- 6. An early stop pays at most twice row by row, plus 25 ------------------

@pytest.fixture
def notes(conn):
    """2,000 notes, one in fifty negative."""
    conn.execute("DROP TABLE IF EXISTS notes2 CASCADE")
    conn.execute("CREATE TABLE notes2 AS SELECT n AS id, CASE WHEN n % 50 = 0 THEN 'I hate it, ' ELSE "
                 "'I love it, ' END || n AS body FROM generate_series(1, 2000) n")
    conn.execute("CREATE TABLE parted (id int, body text) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (1) TO (1001)")
    conn.execute("CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (1001) TO (2001)")
    conn.execute("INSERT INTO parted SELECT * FROM notes2")
    conn.execute("ANALYZE notes2; ANALYZE parted")
    conn.execute("""CREATE OR REPLACE FUNCTION first_negative() RETURNS int LANGUAGE plpgsql AS $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM notes2 LOOP
                IF r.sentiment = 'NEGATIVE' THEN RETURN r.id; END IF;
            END LOOP;
            RETURN NULL;
        END $$""")
    yield conn
    conn.execute("DROP TABLE notes2, parted CASCADE; DROP FUNCTION first_negative()")


F = "(aws_comprehend.detect_sentiment(body, 'en')).sentiment"
EARLY_STOPS = {
    "limit_over_a_filter": f"SELECT id FROM notes2 WHERE {F} = 'NEGATIVE' LIMIT 5",
    "limit_the_plan_cannot_see": f"SELECT id FROM notes2 WHERE {F} = 'NEGATIVE' LIMIT (SELECT 3)",
    "exists": f"SELECT EXISTS (SELECT 1 FROM notes2 WHERE {F} = 'NEGATIVE')",
    "correlated_exists": f"SELECT o.id, EXISTS (SELECT 1 FROM notes2 WHERE notes2.id > o.id * 10 AND {F} = "
                         "'NEGATIVE') FROM notes2 o WHERE o.id <= 3",
    "any": f"SELECT 100 <= ANY (SELECT id FROM notes2 WHERE {F} = 'NEGATIVE')",
    "limit_above_a_join": f"SELECT a.id FROM notes2 a JOIN notes2 b USING (id) WHERE {F.replace('body', 'a.body')} "
                          "= 'NEGATIVE' LIMIT (SELECT 2)",
    "union_all": f"SELECT * FROM (SELECT {F} FROM notes2 UNION ALL SELECT 'x') u LIMIT (SELECT 7)",
    "partitioned": f"SELECT id FROM parted WHERE {F} = 'NEGATIVE' LIMIT (SELECT 4)",
    "plpgsql_loop_that_returns": "SELECT first_negative()",
    "lateral": "SELECT s.sentiment FROM notes2, aws_comprehend.detect_sentiment(body, 'en') s LIMIT (SELECT 30)",
    "aggregate_over_a_limit": f"SELECT count(*) FROM (SELECT {F} FROM notes2 LIMIT (SELECT 60)) x",
}


@pytest.mark.parametrize("sql", EARLY_STOPS.values(), ids=EARLY_STOPS.keys())
def test_an_early_stop_pays_at_most_twice_row_by_row_plus_25(notes, emulator, sql):
    """(Serial plans: a parallel one returns its rows in any order.)"""
    row_by_row, batched = both_ways(notes, emulator, sql, setup=["SET max_parallel_workers_per_gather = 0"])
    assert batched[0] == row_by_row[0]
    assert batched[1] <= 2 * row_by_row[1] + 25, (batched[1], row_by_row[1])


def test_a_cursor_fetching_a_few_rows_pays_for_them_and_one_batch(notes, emulator):
    """A cursor declared NO SCROLL is batched; one declared without it, which
    PostgreSQL makes scrollable, makes its calls row by row."""
    sent = []
    for mode, scroll in (("off", ""), ("on", "NO SCROLL"), ("on", "")):
        notes.execute(f"SET aws_ml.batch_mode = {mode}")
        emulator.reset()
        with notes.transaction():
            notes.execute(f"DECLARE c {scroll} CURSOR FOR SELECT id, {F} FROM notes2")
            assert len(notes.execute("FETCH 3 FROM c").fetchall()) == 3
            notes.execute("CLOSE c")
        sent.append(documents(emulator))
    assert sent == [3, 25, 3]


# --- 7. A failing service costs what row by row pays -------------------------

def test_a_comprehend_that_always_fails_gets_row_by_rows_requests(small, emulator):
    sql = f"SELECT {F} FROM small"
    results = []
    for mode in ("off", "on"):
        small.execute(f"SET aws_ml.batch_mode = {mode}")
        emulator.reset()
        emulator.set_faults(service="comprehend", error_status=500, error_every=1)
        with pytest.raises(psycopg.Error) as caught:
            small.execute(sql).fetchall()
        counters = emulator.counters()["comprehend"]
        results.append((caught.value.diag.sqlstate, sum(op["requests"] for op in counters.values())))
    assert results[0] == results[1] == ("38000", 5)  # aws_ml.max_attempts


def test_one_refused_bedrock_row_costs_at_most_the_requests_in_flight_beside_it(conn, emulator):
    """Row 50 of 200 is refused, 32 requests at a time: row by row sends 50;
    batch mode at most those and the requests in flight when the refusal came."""
    conn.execute("SET aws_ml.max_concurrency = 32")
    conn.execute("DROP TABLE IF EXISTS docs200")
    conn.execute("CREATE TABLE docs200 AS SELECT n AS id, 'document ' || n AS body FROM generate_series(1, 200) n")
    sql = (f"SELECT id, aws_bedrock.invoke_model_get_embeddings('{TITAN}', 'application/json', 'embedding', "
           "CASE WHEN id = 50 THEN '{\"inputText\": \"\"}' ELSE json_build_object('inputText', body)::text END) "
           "FROM docs200")
    row_by_row, batched = both_ways(conn, emulator, sql)
    assert batched[0] == row_by_row[0] and row_by_row[0][0] == "22023"
    assert row_by_row[1] == 50
    assert batched[1] <= 50 + 32
    conn.execute("DROP TABLE docs200")


# --- 8. Statistics and EXPLAIN count as row by row ----------------------------

def test_pg_stat_user_functions_counts_each_call_as_row_by_row(small, emulator):
    small.execute("SET track_functions = 'all'")
    calls = []
    for mode in ("off", "on"):
        small.execute(f"SET aws_ml.batch_mode = {mode}")
        small.execute("SELECT pg_stat_clear_snapshot()")
        before = small.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                               "WHERE funcname = 'detect_sentiment'").fetchone()[0]
        small.execute("SELECT (aws_comprehend.detect_sentiment(body, 'en')).* FROM small").fetchall()
        small.execute("SELECT pg_stat_force_next_flush()")
        small.execute("SELECT pg_stat_clear_snapshot()")
        after = small.execute("SELECT sum(calls) FROM pg_stat_user_functions "
                              "WHERE funcname = 'detect_sentiment'").fetchone()[0]
        calls.append(after - before)
    assert calls == [80, 80]  # (f).* calls f twice a row


def explain_analyze(conn, sql):
    return "\n".join(row[0] for row in conn.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"))


def test_explain_counts_the_batches_sent_and_says_when_batch_mode_is_off(small, emulator):
    """Comprehend refuses every request holding row 10 six times (its batch's
    request, then the halves that hold it) and answers it alone the seventh:
    the rows after it are asked for once the query is past it, in the same
    batch, which EXPLAIN counts once."""
    small.execute("SET aws_ml.batch_mode = on")
    small.execute("DROP TABLE IF EXISTS flaky20")
    small.execute("CREATE TABLE flaky20 AS SELECT n AS id, CASE WHEN n = 10 THEN 'BOOM' ELSE 'fine ' || n END "
                  "AS body FROM generate_series(1, 20) n")
    emulator.set_faults(service="comprehend", error_status=400, error_code="ValidationException",
                        body_contains="BOOM", error_first=6)
    plan = explain_analyze(small, f"SELECT {F} FROM flaky20")
    assert "Batch Processing: num batches=1 avg/min/max batch size=20.000/20.000/20.000" in plan, plan
    emulator.clear_faults()
    small.execute("SET plan_cache_mode = force_generic_plan")
    small.execute("PREPARE p AS SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM small")
    small.execute("EXECUTE p")
    small.execute("SET aws_ml.batch_mode = off")
    assert "Batch Processing: off" in explain_analyze(small, "EXECUTE p")
    small.execute("DEALLOCATE p; DROP TABLE flaky20")
