"""Backfills through SQL: aws_comprehend.materialize_sentiment and
aws_bedrock.materialize_embeddings, counted with the emulator's counters."""
import json
import threading

import psycopg
import pytest

from tests.conftest import counter, stop_when, wait_until

WAIT_SECONDS = 60


def note(i):
    """Distinct texts, so that every row is one document."""
    mood = ("I love it", "I hate it", "It is fine", "What a wonderful day")[i % 4]
    return f"note {i}: {mood}."


def make_notes(conn, rows, table="notes", extra_columns=", materialized_at timestamptz"):
    """rows of notes; every 10th has NULL text, every 10th (offset 5) blank text."""
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text, sentiment varchar, confidence real"
                 f"{extra_columns})")
    texts = [None if i % 10 == 0 else "  \t" if i % 10 == 5 else note(i) for i in range(rows)]
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} (id, body) VALUES (%s, %s)", list(enumerate(texts)))
    return sum(1 for text in texts if text and text.strip())


def batch_counts(emulator, service="comprehend", operation="BatchDetectSentiment"):
    return emulator.counters().get(service, {}).get(operation, {})


def filled(conn, table="notes"):
    return conn.execute(f"SELECT count(*) FROM {table} WHERE sentiment IS NOT NULL").fetchone()[0]


def run_in_thread(conn, sql, params=()):
    """Runs sql on conn in a thread; returns the thread and a list that gets the error, if any."""
    errors = []

    def run():
        try:
            conn.execute(sql, params)
        except psycopg.Error as error:
            errors.append(error)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_fills_each_eligible_row_once_in_batches_of_25_documents(db, emulator, aws_client):
    eligible = make_notes(db, 130)
    db.execute("UPDATE notes SET sentiment = 'MIXED', confidence = 0.25 WHERE id = 1")  # already done
    emulator.reset()
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 60)")

    batches = batch_counts(emulator)
    assert batches["items"] == eligible - 1
    assert sorted(batches["batch_sizes"][:3]) == [10, 25, 25]  # 60 rows, sent at once
    assert sorted(batches["batch_sizes"][3:]) == [18, 25]  # then 43
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0
    rows = db.execute("SELECT id, body, sentiment, confidence, materialized_at IS NOT NULL FROM notes "
                      "ORDER BY id").fetchall()
    to_check = [row for row in rows if row[1] and row[1].strip() and row[0] != 1]
    comprehend = aws_client("comprehend")
    for start in range(0, len(to_check), 25):
        chunk = to_check[start:start + 25]
        answer = comprehend.batch_detect_sentiment(TextList=[row[1] for row in chunk], LanguageCode="en")
        for result in answer["ResultList"]:
            _, _, sentiment, confidence, stamped = chunk[result["Index"]]
            label = result["Sentiment"]
            assert (sentiment, stamped) == (label, True)
            assert confidence == pytest.approx(result["SentimentScore"][label.capitalize()], rel=1e-6)
    assert rows[1][2:] == ("MIXED", 0.25, False)  # untouched
    assert all(row[2:] == (None, None, False) for row in rows if not (row[1] and row[1].strip()))

    emulator.reset()
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert batch_counts(emulator) == {}  # nothing left to do: no request


def test_named_columns_and_a_table_without_timestamp_column(db, emulator):
    db.execute("DROP TABLE IF EXISTS reviews")
    db.execute("CREATE TABLE reviews (review text, mood varchar, score real)")  # no key, no timestamp
    db.execute("INSERT INTO reviews SELECT 'review ' || n || ': great stuff' FROM generate_series(1, 30) n")
    emulator.reset()
    db.execute("CALL aws_comprehend.materialize_sentiment('reviews', 'review', 'en', 'mood', 'score', 7)")
    assert batch_counts(emulator)["items"] == 30
    assert db.execute("SELECT count(*) FROM reviews WHERE mood = 'POSITIVE' AND score > 0").fetchone()[0] == 30


def test_progress_notices_count_up_to_the_total(db, emulator):
    eligible = make_notes(db, 100)
    notices = []
    db.add_notice_handler(lambda notice: notices.append(notice.message_primary))
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 40)")
    progress = [line for line in notices if line.startswith("materialize_sentiment: ")]
    assert len(progress) >= 2, notices
    assert progress[0].startswith(f"materialize_sentiment: 40 / {eligible} rows, ")
    assert progress[-1].startswith(f"materialize_sentiment: {eligible} / {eligible} rows, ")
    assert progress[-1].endswith("about 0 s left")
    assert all(" rows/s, " in line for line in progress)


def test_stopped_half_way_then_run_again_scores_each_row_once(db, connect, emulator):
    eligible = make_notes(db, 600)
    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=30)
    runner = connect()
    pid = runner.info.backend_pid
    thread, errors = run_in_thread(runner, "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', "
                                           "batch_size => 50)")
    wait_until(lambda: batch_counts(emulator).get("requests", 0) >= 5, "five requests")
    db.execute("SELECT pg_cancel_backend(%s)", (pid,))
    thread.join(WAIT_SECONDS)
    assert errors and errors[0].sqlstate == "57014", errors
    # the request in flight at the cancel, if any, finishes in the emulator
    wait_until(lambda: len(batch_counts(emulator)["batch_sizes"]) == batch_counts(emulator)["requests"],
               "the last request")
    done_first = filled(db)
    sent_first = batch_counts(emulator)["items"]
    assert 0 < done_first < eligible
    assert sent_first - done_first <= 50  # at most the batch being sent when stopped is lost

    emulator.set_faults(service="comprehend", latency_ms=0)
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 50)")
    assert filled(db) == eligible
    assert batch_counts(emulator)["items"] - sent_first == eligible - done_first


def test_a_cancel_stops_it_and_the_committed_batches_stay(db, connect, emulator):
    """Cancelled once a batch is committed (statement_timeout cancels the same way)."""
    eligible = make_notes(db, 400)
    emulator.set_faults(service="comprehend", latency_ms=100)
    watcher = connect()
    canceller = stop_when(connect, db.info.backend_pid, lambda: filled(watcher) > 0, "a committed batch")
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 25)")
    finally:
        canceller.join()
    assert 0 < filled(db) < eligible


def test_two_runs_at_once_share_the_rows(db, connect, emulator):
    eligible = make_notes(db, 800)
    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=10)
    runners = [connect(), connect()]
    started = [run_in_thread(conn, "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', "
                                   "batch_size => 25)") for conn in runners]
    for thread, errors in started:
        thread.join(WAIT_SECONDS)
        assert not errors, errors
    batches = batch_counts(emulator)
    assert filled(db) == eligible
    assert batches["items"] == eligible  # no row scored by both
    by_pid = batches["pids"]
    assert set(by_pid) == {str(conn.info.backend_pid) for conn in runners}, by_pid


def test_rows_locked_by_the_application_are_skipped_not_waited_for(db, connect, emulator):
    eligible = make_notes(db, 60)
    writer = connect()
    writer.execute("BEGIN")
    writer.execute("SELECT * FROM notes WHERE id IN (1, 2) FOR UPDATE")
    emulator.reset()
    db.execute("SET lock_timeout = '10s'")  # a regression that waits fails instead of hanging
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 10)")
    assert filled(db) == eligible - 2
    writer.execute("UPDATE notes SET body = 'note 2: edited, and I love it.' WHERE id = 2")
    writer.execute("COMMIT")
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 10)")
    db.execute("RESET lock_timeout")
    assert filled(db) == eligible
    assert batch_counts(emulator)["items"] == eligible


def test_identifiers_are_quoted_and_cannot_inject(db, emulator):
    db.execute('DROP SCHEMA IF EXISTS "my schema" CASCADE')
    db.execute('CREATE SCHEMA "my schema"')
    db.execute("CREATE TABLE victim (id int)")
    table = '"my schema"."the ""notes"" table"'
    text_column = 'x"; DROP TABLE victim; --'
    sentiment_column = "it's a sentiment"
    db.execute(f'CREATE TABLE {table} ("{text_column.replace(chr(34), chr(34) * 2)}" text, '
               f'"{sentiment_column}" varchar, "Confidence" real, materialized_at timestamptz)')
    db.execute(f'INSERT INTO {table} SELECT \'row \' || n || \': lovely\' FROM generate_series(1, 12) n')
    emulator.reset()
    db.execute("CALL aws_comprehend.materialize_sentiment(%s, %s, 'en', %s, 'Confidence', 5)",
               (table, text_column, sentiment_column))
    assert batch_counts(emulator)["items"] == 12
    assert db.execute(f'SELECT count(*) FROM {table} WHERE "{sentiment_column}" = \'POSITIVE\' '
                      f'AND "Confidence" > 0 AND materialized_at IS NOT NULL').fetchone()[0] == 12
    assert db.execute("SELECT to_regclass('victim') IS NOT NULL").fetchone()[0]
    with pytest.raises(psycopg.errors.UndefinedColumn):
        db.execute("CALL aws_comprehend.materialize_sentiment(%s, 'no such column', 'en', %s)",
                   (table, sentiment_column))
    db.execute('DROP SCHEMA "my schema" CASCADE')
    db.execute("DROP TABLE victim")


def test_arguments_are_checked_before_any_request(db, emulator):
    make_notes(db, 20)
    emulator.reset()
    for sql, sqlstate in [
        ("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 0)", "22023"),
        ("CALL aws_comprehend.materialize_sentiment('notes', 'body', NULL)", "22004"),
        ("CALL aws_comprehend.materialize_sentiment('notes', NULL, 'en')", "22004"),
        ("CALL aws_comprehend.materialize_sentiment('no_such_table', 'body', 'en')", "42P01"),
        ("CALL aws_bedrock.materialize_embeddings('notes', 'body', 'sentiment', 'meta.llama3')", "22023"),
    ]:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql)
        assert caught.value.sqlstate == sqlstate, sql
    assert emulator.counters() == {}


def test_inside_a_transaction_block_it_cannot_commit(db, emulator):
    make_notes(db, 20)
    emulator.reset()
    with pytest.raises(psycopg.errors.InvalidTransactionTermination):
        with db.transaction():
            db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert emulator.counters() == {}


def make_documents(conn, rows):
    conn.execute("DROP TABLE IF EXISTS documents")
    conn.execute("CREATE TABLE documents (id int PRIMARY KEY, body text, embedding float8[], "
                 "materialized_at timestamptz)")
    texts = [None if i % 7 == 3 else f"document {i} about PostgreSQL monitoring" for i in range(rows)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO documents (id, body) VALUES (%s, %s)", list(enumerate(texts)))
    return {i: text for i, text in enumerate(texts) if text}


def direct_embedding(aws_client, model_id, body, json_key):
    answer = aws_client("bedrock-runtime").invoke_model(modelId=model_id, body=json.dumps(body),
                                                       contentType="application/json", accept="application/json")
    document = json.loads(answer["body"].read())
    for key in json_key.split("."):
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def embedded(conn):
    return dict(conn.execute("SELECT id, embedding FROM documents WHERE embedding IS NOT NULL "
                             "AND materialized_at IS NOT NULL").fetchall())


def test_titan_embeddings_one_request_per_row(db, emulator, aws_client):
    texts = make_documents(db, 90)
    emulator.reset()
    db.execute("CALL aws_bedrock.materialize_embeddings('documents', 'body', 'embedding', "
               "'amazon.titan-embed-text-v1', batch_size => 40, max_concurrency => 4)")
    invoke = batch_counts(emulator, "bedrock", "InvokeModel")
    assert invoke["requests"] == len(texts) and invoke["items"] == len(texts)
    got = embedded(db)
    assert set(got) == set(texts)
    for i in (1, 2, 89):
        want = direct_embedding(aws_client, "amazon.titan-embed-text-v1", {"inputText": texts[i]}, "embedding")
        assert got[i] == pytest.approx(want)


def test_cohere_embeddings_up_to_96_texts_per_request(db, emulator, aws_client):
    texts = make_documents(db, 260)  # 223 with text
    emulator.reset()
    db.execute("CALL aws_bedrock.materialize_embeddings('documents', 'body', 'embedding', "
               "'cohere.embed-english-v3', batch_size => 200)")
    invoke = batch_counts(emulator, "bedrock", "InvokeModel")
    assert invoke["items"] == len(texts)
    assert sorted(invoke["batch_sizes"]) == sorted([96, 96, 8, 23])  # 200 rows, then 23
    got = embedded(db)
    assert set(got) == set(texts)
    for i in (0, 100, 259):
        want = direct_embedding(aws_client, "cohere.embed-english-v3",
                                {"texts": [texts[i]], "input_type": "search_document"}, "embeddings.0")
        assert got[i] == pytest.approx(want)


def direct_sentiments(aws_client, texts):
    comprehend = aws_client("comprehend")
    return {text: comprehend.detect_sentiment(Text=text, LanguageCode="en")["Sentiment"] for text in texts}


@pytest.mark.parametrize("layout", ["inheritance", "partitions"])
def test_each_row_of_a_table_hierarchy_gets_its_own_answer(db, emulator, aws_client, layout):
    """ctids repeat across the tables of a hierarchy: each table is filled on
    its own, and no row gets another's result."""
    db.execute("DROP TABLE IF EXISTS family CASCADE")
    if layout == "inheritance":
        db.execute("CREATE TABLE family (id int, body text, sentiment varchar, confidence real)")
        db.execute("CREATE TABLE family_a () INHERITS (family)")
        db.execute("CREATE TABLE family_b (extra int) INHERITS (family)")
        db.execute("CREATE TABLE family_b1 () INHERITS (family_b)")
        tables = ["family", "family_a", "family_b", "family_b1"]
    else:
        db.execute("CREATE TABLE family (id int, body text, sentiment varchar, confidence real) "
                   "PARTITION BY RANGE (id)")
        db.execute("CREATE TABLE family_a PARTITION OF family FOR VALUES FROM (0) TO (100)")
        db.execute("CREATE TABLE family_b PARTITION OF family FOR VALUES FROM (100) TO (300) PARTITION BY RANGE (id)")
        db.execute("CREATE TABLE family_b1 PARTITION OF family_b FOR VALUES FROM (100) TO (300)")
        tables = ["family_a", "family_b1"]
    moods = ["I love it", "I hate it", "It is a table", "What a wonderful day", "This is awful"]
    texts = {}
    for number, table in enumerate(tables):
        for i in range(12):
            row_id = number * 100 + i
            texts[row_id] = f"{moods[(i + number) % len(moods)]}, says row {row_id}"
            db.execute(f"INSERT INTO {table} (id, body) VALUES (%s, %s)", (row_id, texts[row_id]))
    expected = direct_sentiments(aws_client, texts.values())
    emulator.reset()
    db.execute("CALL aws_comprehend.materialize_sentiment('family', 'body', 'en', batch_size => 5)")
    got = dict(db.execute("SELECT id, sentiment FROM family").fetchall())
    assert got == {row_id: expected[text] for row_id, text in texts.items()}
    assert batch_counts(emulator)["items"] == len(texts)
    db.execute("DROP TABLE family CASCADE")


@pytest.mark.parametrize("obstacle", [
    "CREATE RULE no_updates AS ON UPDATE TO notes DO INSTEAD NOTHING",
    "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; "
    "CREATE TRIGGER skip_updates BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION skip_row()",
])
def test_an_update_that_changes_nothing_stops_the_run_after_one_batch(db, emulator, obstacle):
    make_notes(db, 200)
    db.execute("DROP FUNCTION IF EXISTS skip_row CASCADE")
    db.execute(obstacle)
    emulator.reset()
    db.execute("SET statement_timeout = '20s'")  # a regression would loop, paying for the same rows
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 25)")
    db.execute("RESET statement_timeout")
    assert "ctid (0,2) of public.notes: its UPDATE changed no row" in caught.value.diag.message_primary
    assert "rule" in caught.value.diag.message_hint and "trigger" in caught.value.diag.message_hint
    assert batch_counts(emulator)["items"] == 25
    db.execute("DROP TABLE notes")
    db.execute("DROP FUNCTION IF EXISTS skip_row")


@pytest.mark.parametrize("columns, sqlstate", [
    ("sentiment varchar(3), confidence real", "42804"),
    ("sentiment char(7), confidence real", "42804"),
    ("sentiment varchar, confidence int", "42804"),
    ("sentiment varchar, confidence numeric(5, 2)", "42804"),
    ("sentiment text, confidence numeric", None),
    ("sentiment varchar(8), confidence double precision", None),
    ("sentiment char(8), confidence real", None),
    # the column each filled row is stamped in
    ("sentiment varchar, confidence real, materialized_at int", "42804"),
    ("sentiment varchar, confidence real, materialized_at text", "42804"),
    ("sentiment varchar, confidence real, materialized_at timestamp", None),
])
def test_output_columns_must_hold_the_results_whole_before_any_request(db, emulator, columns, sqlstate):
    db.execute("DROP TABLE IF EXISTS narrow")
    db.execute(f"CREATE TABLE narrow (body text, {columns})")
    db.execute("INSERT INTO narrow (body) VALUES ('I love it'), ('It is a table, nothing more')")
    emulator.reset()
    sql = "CALL aws_comprehend.materialize_sentiment('narrow', 'body', 'en')"
    if sqlstate:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql)
        assert caught.value.sqlstate == sqlstate
        assert caught.value.diag.message_primary.startswith("aws_ml: materialize_sentiment")
        assert "column" in caught.value.diag.message_primary
        assert emulator.counters() == {}
    else:
        db.execute(sql)
        assert db.execute("SELECT rtrim(sentiment), confidence > 0 FROM narrow ORDER BY body").fetchall() == \
            [("POSITIVE", True), ("NEUTRAL", True)]
    db.execute("DROP TABLE narrow")


def test_embedding_column_must_hold_floats(db, emulator):
    make_documents(db, 3)
    db.execute("ALTER TABLE documents ADD COLUMN rounded int[]")
    emulator.reset()
    with pytest.raises(psycopg.errors.DatatypeMismatch):
        db.execute("CALL aws_bedrock.materialize_embeddings('documents', 'body', 'rounded', "
                   "'amazon.titan-embed-text-v1')")
    assert emulator.counters() == {}


def test_oid_zero_is_no_relation(db, emulator):
    for oid in (0, 4294967295):
        with pytest.raises(psycopg.errors.UndefinedTable) as caught:
            db.execute(f"CALL aws_comprehend.materialize_sentiment({oid}, 'body', 'en')")
        assert caught.value.diag.message_primary == \
            f"aws_ml: materialize_sentiment: there is no relation with OID {oid}"
    assert emulator.counters() == {}


def test_text_of_unicode_spaces_is_blank_and_never_to_do(db, emulator):
    """No-break and other Unicode spaces count as blank in SQL exactly as in
    Python: such rows are not sent, and a second run has nothing to do."""
    db.execute("DROP TABLE IF EXISTS spaces")
    db.execute("CREATE TABLE spaces (body text, sentiment varchar, confidence real)")
    db.execute("INSERT INTO spaces VALUES ('I love it'), (E'\\u00a0'), (E'\\u2003 \\u3000\\u00a0\\t'), "
               "(E'\\u200b'), (E'\\u00a0ok\\u00a0')")
    for expected_done, expected_total, sent in ((3, 3, 3), (0, 0, 0)):
        notices = []
        db.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        emulator.reset()
        db.execute("CALL aws_comprehend.materialize_sentiment('spaces', 'body', 'en')")
        assert notices[-1].startswith(f"materialize_sentiment: {expected_done} / {expected_total} rows")
        assert batch_counts(emulator).get("items", 0) == sent
    assert db.execute("SELECT count(*) FROM spaces WHERE sentiment IS NULL").fetchone() == (2,)
    db.execute("DROP TABLE spaces")
