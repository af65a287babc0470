"""Backfills through SQL: aws_comprehend.materialize_sentiment and
aws_bedrock.materialize_embeddings, counted with the emulator's counters."""
import json
import threading
from pathlib import Path

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


def test_a_run_of_one_batch_reports_once(db, emulator):
    """One NOTICE, whose CONTEXT names the procedure called (its body has its name)."""
    eligible = make_notes(db, 10)
    notices = []
    db.add_notice_handler(lambda notice: notices.append((notice.message_primary.split(",")[0], notice.context)))
    db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert notices == [(f"materialize_sentiment: {eligible} / {eligible} rows",
                        'PL/Python procedure "materialize_sentiment"')]


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
    # a deferred constraint the block's earlier statement broke is checked at its COMMIT, not by the CALL
    db.execute("CREATE TABLE note_labels (name text PRIMARY KEY)")
    db.execute("ALTER TABLE notes ADD COLUMN label text REFERENCES note_labels DEFERRABLE INITIALLY DEFERRED")
    try:
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            with db.transaction():
                db.execute("UPDATE notes SET label = 'none such' WHERE id = 1")
                db.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    finally:  # the tables are the database's, which other test files share
        db.execute("ALTER TABLE notes DROP COLUMN label")
        db.execute("DROP TABLE note_labels")
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


CLEAR_TRIGGER = ("CREATE FUNCTION clear_{column}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.{column} := NULL; "
                 "RETURN NEW; END $$; CREATE TRIGGER clear BEFORE UPDATE ON {table} FOR EACH ROW "
                 "EXECUTE FUNCTION clear_{column}()")
OBSTACLES = {
    # the issue's: the row came back with a new ctid, still to do, and was selected again
    "a BEFORE trigger sets it back": (CLEAR_TRIGGER, "its UPDATE left sentiment NULL", 5),
    "a BEFORE trigger skips it": (
        "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; "
        "CREATE TRIGGER skip BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION skip_row()",
        "its UPDATE changed no row", 5),
    "an AFTER trigger writes it again": (
        "CREATE FUNCTION clear_again() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE {table} SET sentiment = NULL WHERE id = NEW.id; RETURN NULL; END $$; "
        "CREATE TRIGGER clear_again AFTER UPDATE ON {table} FOR EACH ROW WHEN (NEW.sentiment IS NOT NULL) "
        "EXECUTE FUNCTION clear_again()",
        "the table's code wrote it again after its UPDATE", 5),
    "a DO INSTEAD rule takes the UPDATE": (
        "CREATE RULE no_updates AS ON UPDATE TO {table} DO INSTEAD NOTHING", "a DO INSTEAD rule", 0),
}


def make_loop(conn, table="loop"):
    """The issue's table: 10 rows to do."""
    conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    conn.execute(f"CREATE TABLE {table} (id int, body text, sentiment varchar, confidence real)")
    conn.execute(f"INSERT INTO {table} SELECT i, 'I really like item ' || i FROM generate_series(1, 10) i")


@pytest.mark.parametrize("obstacle", OBSTACLES)
def test_a_row_that_does_not_take_its_answer_stops_the_run_after_one_batch(db, emulator, obstacle):
    """55000 naming the row, after the batch's one request: no row is sent
    twice. No statement_timeout but a safety net: a regression loops."""
    code, why, documents = OBSTACLES[obstacle]
    make_loop(db)
    db.execute("DROP FUNCTION IF EXISTS clear_sentiment, skip_row, clear_again CASCADE")
    db.execute(code.format(table="loop", column="sentiment"))
    emulator.reset()
    db.execute("SET statement_timeout = '120s'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute("CALL aws_comprehend.materialize_sentiment('loop', 'body', 'en', batch_size := 5)")
    db.execute("RESET statement_timeout")
    assert why in caught.value.diag.message_primary
    if documents:
        assert "stopped at the row at ctid (0,1) of public.loop" in caught.value.diag.message_primary
    assert "trigger" in caught.value.diag.message_hint or "rule" in caught.value.diag.message_hint
    assert batch_counts(emulator).get("items", 0) == documents
    assert batch_counts(emulator).get("requests", 0) == (1 if documents else 0)
    assert filled(db, "loop") == 0
    db.execute("DROP TABLE loop")
    db.execute("DROP FUNCTION IF EXISTS clear_sentiment, skip_row, clear_again CASCADE")


def test_embeddings_that_a_trigger_clears_stop_after_one_request_per_row(db, emulator):
    """The issue's materialize_embeddings: 2,156 InvokeModel for 4 rows, its
    progress at "1096 / 4 rows"."""
    make_documents(db, 4)
    db.execute("DROP FUNCTION IF EXISTS clear_embedding CASCADE")
    db.execute(CLEAR_TRIGGER.format(table="documents", column="embedding"))
    emulator.reset()
    notices = []
    db.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    db.execute("SET statement_timeout = '120s'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute("CALL aws_bedrock.materialize_embeddings('documents', 'body', 'embedding', "
                   "'amazon.titan-embed-text-v1')")
    db.execute("RESET statement_timeout")
    assert "its UPDATE left embedding NULL" in caught.value.diag.message_primary
    assert batch_counts(emulator, "bedrock", "InvokeModel")["requests"] == 3  # the 4 rows: one NULL text
    assert not [n for n in notices if "rows" in n]
    db.execute("DROP TABLE documents")
    db.execute("DROP FUNCTION clear_embedding")


def test_rows_a_policy_keeps_from_updating_are_not_sent(cluster, emulator, login_role):
    """The table's owner, subject to its own policies (FORCE ROW LEVEL
    SECURITY), may see every row and update half of them: the run sends
    that half once and ends (SELECT ... FOR UPDATE applies the UPDATE policy)."""
    owner = login_role()
    name = "aws_ml_test"
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as admin:
        admin.execute(f"GRANT aws_ml TO {owner}")
        admin.execute(f"CREATE SCHEMA {owner} AUTHORIZATION {owner}")
    try:
        with psycopg.connect(cluster.conninfo(name, owner), autocommit=True) as conn:
            make_loop(conn, f"{owner}.loop")
            conn.execute(f"ALTER TABLE {owner}.loop ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
            conn.execute(f"CREATE POLICY reads ON {owner}.loop FOR SELECT USING (true)")
            conn.execute(f"CREATE POLICY updates ON {owner}.loop FOR UPDATE USING (id > 5)")
            emulator.reset()
            conn.execute("SET statement_timeout = '120s'")
            conn.execute(f"CALL aws_comprehend.materialize_sentiment('{owner}.loop', 'body', 'en', batch_size := 5)")
            assert batch_counts(emulator)["items"] == 5
            assert conn.execute(f"SELECT array_agg(id ORDER BY id) FROM {owner}.loop "
                                "WHERE sentiment IS NOT NULL").fetchone() == ([6, 7, 8, 9, 10],)
    finally:
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {owner} CASCADE")


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


# A tenant's table whose code runs at each backfill UPDATE: each piece calls
# escalate(), which says as whom it runs and tries to make the tenant SUPERUSER.
TENANT_CODE = {
    "trigger": "CREATE FUNCTION {s}.on_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "PERFORM {s}.escalate(); RETURN NEW; END $$; "
               "CREATE TRIGGER on_update BEFORE UPDATE ON {s}.reviews FOR EACH ROW EXECUTE FUNCTION {s}.on_update()",
    "rule": "CREATE RULE on_update AS ON UPDATE TO {s}.reviews DO ALSO SELECT {s}.escalate()",
    "default": "CREATE TABLE {s}.log (n int DEFAULT {s}.escalate()); "
               "CREATE RULE on_update AS ON UPDATE TO {s}.reviews DO ALSO INSERT INTO {s}.log DEFAULT VALUES",
    "generated column": "ALTER TABLE {s}.reviews ADD COLUMN g int GENERATED ALWAYS AS "
                        "({s}.escalate_immutable(sentiment)) STORED",
    "index expression": "CREATE INDEX ON {s}.reviews ({s}.escalate_immutable(sentiment))",
}


@pytest.fixture
def tenant(cluster, database, login_role):
    """A role owning a schema of its name with a table reviews of 3 rows to
    do, and escalate()."""
    name = login_role()
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
    with psycopg.connect(cluster.conninfo(database, name), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name}.reviews (id int, body text, sentiment varchar, confidence real)")
        conn.execute(f"INSERT INTO {name}.reviews SELECT i, 'I love item ' || i FROM generate_series(1, 3) i")
        conn.execute(f"""CREATE FUNCTION {name}.escalate() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                RAISE NOTICE 'table code runs as %', current_user;
                BEGIN
                    EXECUTE 'ALTER ROLE {name} SUPERUSER';
                EXCEPTION WHEN OTHERS THEN NULL;
                END;
                RETURN 1;
            END $$""")
        conn.execute(f"CREATE FUNCTION {name}.escalate_immutable(varchar) RETURNS int LANGUAGE plpgsql IMMUTABLE "
                     f"AS $$ BEGIN RETURN {name}.escalate(); END $$")
    yield name
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as admin:
        admin.execute(f"ALTER ROLE {name} NOSUPERUSER")
        admin.execute(f"DROP SCHEMA {name} CASCADE")


def table_code_runs_as(conn):
    """The roles the table's code said it ran as, from conn's notices."""
    roles = []
    conn.add_notice_handler(lambda diag: roles.extend(
        diag.message_primary.split()[-1:] if diag.message_primary.startswith("table code runs as") else []))
    return roles


@pytest.mark.parametrize("code", TENANT_CODE)
def test_a_superusers_backfill_runs_the_tables_code_as_its_owner(db, emulator, tenant, code):
    """The issue's pg_cron job run by postgres on a tenant's table: the
    tenant's code runs as the tenant, and cannot make itself SUPERUSER."""
    with psycopg.connect(db.info.dsn.replace("user=postgres", f"user={tenant}"), autocommit=True) as conn:
        conn.execute(TENANT_CODE[code].format(s=tenant))
    ran_as = table_code_runs_as(db)
    db.execute(f"CALL aws_comprehend.materialize_sentiment('{tenant}.reviews', 'body', 'en')")
    assert filled(db, f"{tenant}.reviews") == 3
    assert ran_as and set(ran_as) == {tenant}, ran_as
    assert db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (tenant,)).fetchone() == (False,)
    assert batch_counts(emulator)["items"] == 3


def test_a_members_backfill_of_anothers_table_needs_its_privileges_and_runs_as_the_owner(
        db, connect, emulator, tenant, login_role):
    """A member of aws_ml that does not own the table: refused (42501) before
    any request without UPDATE on its columns, and while the table's row
    security applies to it (the owner's would not); given UPDATE, the
    table's trigger runs as its owner."""
    member = login_role()
    db.execute(f"GRANT aws_ml TO {member}")
    call = f"CALL aws_comprehend.materialize_sentiment('{tenant}.reviews', 'body', 'en')"
    owner = connect(tenant)
    owner.execute(f"GRANT USAGE ON SCHEMA {tenant} TO {member}")
    owner.execute(f"GRANT SELECT, UPDATE (body) ON {tenant}.reviews TO {member}")
    conn = connect(member)
    ran_as = table_code_runs_as(conn)

    def refused():
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            conn.execute(call)
        return caught.value.diag.message_primary
    assert "permission denied for table" in refused()
    owner.execute(f"GRANT UPDATE ON {tenant}.reviews TO {member}")
    owner.execute(f"ALTER TABLE {tenant}.reviews ENABLE ROW LEVEL SECURITY")
    owner.execute(f"CREATE POLICY everything ON {tenant}.reviews USING ({tenant}.escalate() = 1)")
    assert "row security" in refused()
    assert ran_as == [] and emulator.counters() == {}
    owner.execute(f"ALTER TABLE {tenant}.reviews DISABLE ROW LEVEL SECURITY")
    owner.execute(TENANT_CODE["trigger"].format(s=tenant))
    conn.execute(call)
    assert filled(db, f"{tenant}.reviews") == 3
    assert set(ran_as) == {tenant}, ran_as


# --- a session's first call, where the module is not preloaded ----------------------------

def module_loaded(conn):
    """Whether conn's backend has loaded aws_ml's C module."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return "/plugins/aws_ml.so" in Path(f"/proc/{pid}/maps").read_text()


def outcome_of(conn, statements):
    """The error of the last of statements (each before it succeeds; None if
    none fails) as the client reads it, and the notices of them all with
    their CONTEXT; then the session as before: its transaction rolled back,
    its settings reset."""
    notices = []

    def handler(diag):
        notices.append((diag.severity_nonlocalized, diag.message_primary.split(",")[0], diag.context))
    conn.add_notice_handler(handler)
    error = None
    try:
        for statement in statements:
            conn.execute(statement)
    except psycopg.Error as caught:
        diag = caught.diag
        error = (diag.sqlstate, diag.message_primary, diag.message_detail, diag.message_hint, diag.context,
                 diag.source_function)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:  # the statements' BEGIN
        conn.execute("ROLLBACK")
    conn.execute("RESET ALL")
    conn.remove_notice_handler(handler)
    return error, notices


@pytest.mark.parametrize("statements, sqlstate, context", [
    (["CALL aws_comprehend.materialize_sentiment('notes', 'nosuch', 'en')"], "42703", None),
    (["CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en', batch_size => 0)"], "22023", None),
    (["CALL aws_bedrock.materialize_embeddings('documents', 'body', 'embedding', 'meta.llama3')"], "22023", None),
    (["BEGIN", "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')"], "2D000", None),
    (["BEGIN READ ONLY", "CALL aws_bedrock.materialize_embeddings('documents', 'body', 'embedding', "
      "'amazon.titan-embed-text-v1')"], "25006", None),
    (["DO $$ BEGIN CALL aws_comprehend.materialize_sentiment('notes', 'nosuch', 'en'); END $$"], "42703",
     "SQL statement \"CALL aws_comprehend.materialize_sentiment('notes', 'nosuch', 'en')\"\n"
     "PL/pgSQL function inline_code_block line 1 at CALL"),
])
def test_a_sessions_first_call_fails_as_its_later_calls(db, connect, emulator, statements, sqlstate, context):
    """PostgreSQL decides how to call a procedure before its body runs, and
    the module is loaded (here, where it is not preloaded) by the first call
    of a session: that call's error reads as every later one's, without
    PL/Python's traceback."""
    make_notes(db, 4)
    make_documents(db, 2)
    emulator.reset()
    conn = connect()
    assert not module_loaded(conn)
    first, _ = outcome_of(conn, statements)
    assert module_loaded(conn)
    again, _ = outcome_of(conn, statements)
    assert first == again
    assert first[0] == sqlstate and first[1].startswith("aws_ml: ") and first[4] == context, first
    assert emulator.counters() == {}
