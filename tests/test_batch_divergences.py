"""Cases where batch mode has departed from row by row, each found by the
differential test (tests/test_batch_differential.py) and kept as its smallest
query: each asserts row by row's answers, side effects, errors and bill there;
a docstring that names a commit says what batch mode still did on it. Run in
a session that has already made a call (the `db` fixture's)."""
import psycopg
import pytest

from tests.test_batch_differential import documents


@pytest.fixture
def forty(db):
    """40 notes, distinct texts; g takes 0, 1, 2 in no order."""
    db.execute("DROP TABLE IF EXISTS dv_forty, dv_sink")
    db.execute("DROP SEQUENCE IF EXISTS dv_seq")
    db.execute("CREATE TABLE dv_forty AS SELECT n id, (n * 7) % 3 g, 'note ' || n body FROM generate_series(1, 40) n")
    db.execute("CREATE TABLE dv_sink (x bigint, y bigint, sentiment text)")
    db.execute("CREATE SEQUENCE dv_seq")
    yield db
    db.execute("DROP TABLE dv_forty, dv_sink")
    db.execute("DROP SEQUENCE dv_seq")


def both_ways(conn, *statements):
    """The rows of the last of statements, run row by row, then in batch
    mode, each time in a transaction rolled back, after dv_seq restarts."""
    results = []
    for mode in ("off", "on"):
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL aws_ml.batch_mode = {mode}")
            conn.execute("SELECT setval('dv_seq', 1, false)")
            for statement in statements:
                cursor = conn.execute(statement)
            results.append(cursor.fetchall())
    return results


def documents_both_ways(conn, emulator, sql):
    """(rows, or the SQLSTATE of sql's error; Comprehend's documents) of sql
    row by row, then in batch mode."""
    results = []
    for mode in ("off", "on"):
        conn.execute(f"SET aws_ml.batch_mode = {mode}")
        emulator.reset()
        try:
            rows = conn.execute(sql).fetchall()
        except psycopg.Error as error:
            rows = error.sqlstate
        results.append((rows, documents(emulator.counters())["comprehend"]))
    return results


BELOW = ("SELECT x, nextval('dv_seq') y, (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
         "FROM (SELECT nextval('dv_seq') x, body FROM dv_forty WHERE id <= 3 OFFSET 0) s")


@pytest.mark.parametrize("sql", [
    f"INSERT INTO dv_sink {BELOW} RETURNING x, y",
    f"SELECT array_agg(x || ':' || y) FROM ({BELOW}) z",
], ids=["insert_select", "aggregate"])
def test_a_volatile_expression_below_the_batching_node_keeps_its_place_in_row_order(forty, sql):
    """The subquery's nextval and the select list's run in row order, as row
    by row runs them (1, 2 for row 1, then 3, 4), under a parent that reads
    all its rows (INSERT, an aggregate): with something volatile below it,
    the call is not read ahead (it once was: 1, 4; 2, 5; 3, 6)."""
    row_by_row, batched = both_ways(forty, sql)
    assert batched == row_by_row


def test_a_query_that_fails_evaluates_nothing_volatile_past_its_failing_row(forty):
    """Row 1 divides by zero after the subquery below the calls has called
    nextval once: the sequence shows 1 in both modes (batch mode once read
    25 rows ahead under the Sort, and showed 25)."""
    sql = ("SELECT x, 1 / (id - 1), (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
           "FROM (SELECT nextval('dv_seq') x, id, body FROM dv_forty OFFSET 0) s ORDER BY 3")
    called = []
    for mode in ("off", "on"):
        forty.execute(f"SET aws_ml.batch_mode = {mode}")
        forty.execute("SELECT setval('dv_seq', 1, false)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            forty.execute(sql)
        called.append(forty.execute("SELECT last_value FROM dv_seq").fetchone())
    assert called[1] == called[0] == (1,)


def test_a_cursor_declared_without_scroll_fetches_backward(forty):
    """PostgreSQL makes a cursor declared without SCROLL or NO SCROLL
    scrollable when its plan can scan backward; such a cursor is not
    batched, and FETCH BACKWARD returns the row as row by row does (a
    batching node in it once failed it with 55000, "cursor can only scan
    forward")."""
    row_by_row, batched = both_ways(
        forty, "DECLARE c CURSOR FOR SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM dv_forty",
        "FETCH 3 FROM c", "FETCH BACKWARD 1 FROM c")
    assert batched == row_by_row


def test_where_current_of_finds_the_row_below_a_one_time_filter(forty):
    """An uncorrelated subquery in WHERE makes a Result with a One-Time
    Filter between the batching node and the Seq Scan; WHERE CURRENT OF
    still finds the cursor's row through it and updates row 1, as row by
    row does (it once failed with 24000, "not a simply updatable scan")."""
    row_by_row, batched = both_ways(
        forty, "DECLARE c CURSOR FOR SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM dv_forty "
        "WHERE (SELECT true)", "FETCH 1 FROM c", "UPDATE dv_forty SET body = 'x' WHERE CURRENT OF c RETURNING id")
    assert batched == row_by_row == [(1,)]


def test_order_by_with_limit_keeps_row_by_rows_rows_of_equal_key(forty):
    """Row by row, the Limit bounds its Sort, which keeps the first 5 rows of
    g = 0 (top-N heapsort): ids 3, 6, 9, 12, 15. The batching node between
    the Limit and the Sort (Limit, AwsMlBatch, Result, Sort) passes the
    bound down, so the Sort keeps the same 5 rows of equal key (without it,
    a full quicksort put other rows of g = 0 first)."""
    sql = "SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM dv_forty ORDER BY g LIMIT 5"
    row_by_row, batched = both_ways(forty, sql)
    assert batched == row_by_row


@pytest.mark.parametrize("sql", [
    "SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment, "
    "(aws_comprehend.detect_sentiment(body || '!', 'en')).sentiment FROM dv_forty LIMIT (SELECT 1)",
    "SELECT (aws_comprehend.detect_sentiment(b, 'en')).sentiment FROM (SELECT "
    "(aws_comprehend.detect_sentiment(body, 'en')).sentiment || body b FROM dv_forty OFFSET 0) s LIMIT (SELECT 1)",
], ids=["two_calls_a_row", "nested_queries"])
def test_an_early_stop_pays_at_most_twice_row_by_row_plus_one_request(forty, emulator, sql):
    """One row used: row by row sends 2 documents, and batch mode at most
    2 x 2 + 25 = 29: two calls a row, or a batching node reading from
    another, share the 25 documents of slack (paid once a site, they cost
    50)."""
    (rows, row_by_row), (batched_rows, batched) = documents_both_ways(forty, emulator, sql)
    assert len(batched_rows) == len(rows) == 1
    assert row_by_row == 2
    assert batched <= 2 * row_by_row + 25


def test_an_input_asked_again_with_another_max_rows_per_batch_is_sent_once(forty, emulator):
    """Each note ten times, with max_rows_per_batch 1 to 10: both modes send
    each of the 40 notes once (row by row's statement cache answers the
    other nine; batch mode merges identical inputs across max_rows_per_batch
    values, where merging them only within one value sent 380)."""
    sql = ("SELECT count((aws_comprehend.detect_sentiment(body, 'en', k)).sentiment) "
           "FROM dv_forty, generate_series(1, 10 + 0 * id) k")
    (rows, row_by_row), (batched_rows, batched) = documents_both_ways(forty, emulator, sql)
    assert batched_rows == rows == [(400,)]
    assert batched == row_by_row == 40


def test_an_early_stop_after_repeated_inputs_pays_at_most_twice_row_by_row_plus_one_request(db, emulator):
    """Rows 1 to 30 ask about one text and row 31 fails the query: row by row
    sends 2 documents (its statement cache answers rows 2 to 30), so batch
    mode may send 2 x 2 + 25 = 29. On b18c944 it sends 46: scan.c's
    next_batch_rows grows the batches (25, then 50 rows) with the rows used,
    not with the documents those rows cost."""
    sql = ("SELECT (aws_comprehend.detect_sentiment(CASE WHEN n <= 30 THEN 'same' ELSE 'note ' || n END, 'en'))"
           ".sentiment, 1 / (31 - n) FROM generate_series(1, 200) n")
    (error, row_by_row), (batched_error, batched) = documents_both_ways(db, emulator, sql)
    assert batched_error == error == "22012"
    assert row_by_row == 2
    assert batched <= 2 * row_by_row + 25
