"""Restores that load rows into tables whose triggers call aws_ml. A data-only
restore (pg_restore --data-only, or pg_dump --data-only restored with psql)
loads the rows with COPY into tables whose triggers already exist, and
PostgreSQL fires them: one request a row, restored values overwritten with
the service's new answers and the rows an AFTER trigger writes written a
second time. --disable-triggers (ALTER TABLE ... DISABLE TRIGGER ALL around
each table's data) or session_replication_role = replica (which still fires
ENABLE ALWAYS triggers) load the rows as dumped, without a request."""
import re
import subprocess
import uuid

import psycopg
import pytest

from tests.conftest import REGION, create_database
from tests.s3_support import BUCKET, copy_to_stdout
from tests.test_dump_restore import requests, run, score_review, scored_by_the_service

ROWS = 8
CORRECTED = (2, 3)  # reviews whose score a person corrected after the trigger scored them
SCHEMA_SQL = [
    "CREATE EXTENSION aws_ml CASCADE",
    "CREATE SCHEMA shop",
    "CREATE TABLE shop.reviews (id serial PRIMARY KEY, body text, sentiment varchar, confidence real)",
    "CREATE TABLE shop.alerts (review_id int, sentiment varchar)",
    score_review("shop"),
    "CREATE TRIGGER score_review BEFORE INSERT ON shop.reviews FOR EACH ROW EXECUTE FUNCTION shop.score_review()",
    # and an AFTER trigger that asks again and records the negative ones
    """CREATE FUNCTION shop.alert_negative() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO shop.alerts SELECT NEW.id, s.sentiment
        FROM aws_comprehend.detect_sentiment(NEW.body, 'en') s WHERE s.sentiment = 'NEGATIVE';
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER alert_negative AFTER INSERT ON shop.reviews FOR EACH ROW EXECUTE FUNCTION shop.alert_negative()",
]
# scores, in one statement over the transition table, the rows inserted
# without a score: batch mode sends them in batches
SCORE_NEW_REVIEWS = """CREATE FUNCTION shop.score_new_reviews() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE shop.reviews r SET sentiment = (s.scored).sentiment, confidence = (s.scored).confidence
        FROM (SELECT n.id, aws_comprehend.detect_sentiment(n.body, 'en') AS scored
              FROM new_rows n WHERE n.sentiment IS NULL) s
        WHERE r.id = s.id;
        RETURN NULL;
    END $$"""
CONTENTS = {
    "reviews": "SELECT id, body, sentiment, confidence FROM shop.reviews ORDER BY id",
    "alerts": "SELECT review_id, sentiment FROM shop.alerts ORDER BY 1",
}


def contents(conn):
    return {name: conn.execute(sql).fetchall() for name, sql in CONTENTS.items()}


@pytest.fixture(scope="module")
def source(cluster):
    """The source database, its rows scored by its triggers, two scores
    corrected by hand; its contents."""
    name = create_database(cluster, extension_sql=None)
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        for sql in SCHEMA_SQL:
            conn.execute(sql)
        conn.execute("INSERT INTO shop.reviews (body) SELECT 'review ' || n || ': ' || "
                     "CASE WHEN n % 2 = 1 THEN 'I love it.' ELSE 'I hate it.' END "
                     f"FROM pg_catalog.generate_series(1, {ROWS}) n")
        conn.execute(f"UPDATE shop.reviews SET sentiment = 'MIXED', confidence = 1 WHERE id IN {CORRECTED}")
        yield name, contents(conn)
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def dumps(tmp_path_factory, cluster, source):
    """The source's schema (custom format), all of it (custom format) and its
    data (plain format, with and without --disable-triggers)."""
    folder = tmp_path_factory.mktemp("dumps")
    made = {"schema": folder / "schema.dump", "custom": folder / "all.dump",
            "plain": folder / "data.sql", "plain --disable-triggers": folder / "data-disable-triggers.sql"}
    conninfo = cluster.conninfo(source[0])
    run(cluster.bindir / "pg_dump", "-Fc", "--schema-only", "-f", made["schema"], "-d", conninfo)
    run(cluster.bindir / "pg_dump", "-Fc", "-f", made["custom"], "-d", conninfo)
    run(cluster.bindir / "pg_dump", "--data-only", "-f", made["plain"], "-d", conninfo)
    run(cluster.bindir / "pg_dump", "--data-only", "--disable-triggers", "-f", made["plain --disable-triggers"],
            "-d", conninfo)
    return made


def schema_only_copy(cluster, emulator, fresh_database, dumps, settings=None):
    """A new database holding the source's schema: its triggers, no rows;
    settings: {trigger: "ENABLE ALWAYS", "ENABLE REPLICA" or "DISABLE"}, as
    a subscriber's triggers may be set."""
    name = fresh_database()
    emulator.reset()
    run(cluster.bindir / "pg_restore", "--exit-on-error", "-d", cluster.conninfo(name), dumps["schema"])
    assert requests(emulator) == {}
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        for trigger, setting in (settings or {}).items():
            conn.execute(f"ALTER TABLE shop.reviews {setting} TRIGGER {trigger}")
    return name


def restore_data(cluster, dumps, name, how, options=None):
    conninfo = cluster.conninfo(name)
    if how.startswith("plain"):
        run(cluster.bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", dumps[how], "-d", conninfo,
                options=options)
    else:
        run(cluster.bindir / "pg_restore", "--data-only", "--exit-on-error", *how.split()[1:], "-d", conninfo,
                dumps["custom"], options=options)


REPLICA = "-c session_replication_role=replica"
BOTH = ("score_review", "alert_negative")
STATE = {"ENABLE": "O", "ENABLE ALWAYS": "A", "ENABLE REPLICA": "R", "DISABLE": "D"}  # pg_trigger.tgenabled
# how the data is restored, PGOPTIONS, the triggers' settings before, the
# triggers that fire, and the requests they send
RESTORES = {
    "pg_restore --data-only": ("custom", None, {}, BOTH, ROWS),
    "pg_restore --data-only, aws_ml.statement_cache = off": (
        "custom", "-c aws_ml.statement_cache=off", {}, BOTH, 2 * ROWS),
    "pg_restore --data-only --disable-triggers": ("custom --disable-triggers", None, {}, (), 0),
    "pg_restore --data-only, session_replication_role = replica": ("custom", REPLICA, {}, (), 0),
    "pg_dump --data-only | psql": ("plain", None, {}, BOTH, ROWS),
    "pg_dump --data-only --disable-triggers | psql": ("plain --disable-triggers", None, {}, (), 0),
    "pg_dump --data-only | psql, session_replication_role = replica": ("plain", REPLICA, {}, (), 0),
    "ENABLE ALWAYS, pg_restore --data-only --disable-triggers": (
        "custom --disable-triggers", None, dict.fromkeys(BOTH, "ENABLE ALWAYS"), (), 0),
    "ENABLE REPLICA and DISABLE, pg_dump --data-only --disable-triggers | psql": (
        "plain --disable-triggers", None, {"score_review": "ENABLE REPLICA", "alert_negative": "DISABLE"}, (), 0),
    "ENABLE ALWAYS, pg_restore --data-only, session_replication_role = replica": (
        "custom", REPLICA, {"score_review": "ENABLE ALWAYS"}, ("score_review",), ROWS),
}


def enabled(conn):
    return dict(conn.execute("SELECT tgname, tgenabled FROM pg_catalog.pg_trigger "
                             "WHERE tgrelid = 'shop.reviews'::regclass AND NOT tgisinternal").fetchall())


@pytest.mark.parametrize("restore", RESTORES)
def test_a_data_only_restore_fires_the_triggers_unless_they_are_disabled(cluster, emulator, fresh_database, dumps,
                                                                        source, restore):
    """Where the triggers fire, COPY sends one DetectSentiment a row (the
    AFTER trigger's call of the same text in the same statement comes from
    aws_ml.statement_cache), the corrected scores are replaced by the
    service's, and the alerts are loaded and then written again. Where they
    do not, no request, and the rows are the source's."""
    how, options, settings, fired, sent = RESTORES[restore]
    name = schema_only_copy(cluster, emulator, fresh_database, dumps, settings)
    emulator.reset()
    restore_data(cluster, dumps, name, how, options)
    want = source[1]
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        # --disable-triggers ends with ALTER TABLE ... ENABLE TRIGGER ALL,
        # which makes every trigger of the table ENABLE, whatever it was
        assert enabled(conn) == {trigger: "O" if "--disable-triggers" in how else STATE[setting]
                                 for trigger, setting in {**dict.fromkeys(BOTH, "ENABLE"), **settings}.items()}
        got = contents(conn)
        if not fired:
            assert requests(emulator) == {}
            assert got == want
            return
        assert requests(emulator) == {("comprehend", "DetectSentiment"): (sent, sent)}
        assert got["reviews"] == scored_by_the_service(conn, "shop.reviews")
    changed = [row[0] for row, was in zip(got["reviews"], want["reviews"]) if row != was]
    assert changed == list(CORRECTED)
    twice = sorted(want["alerts"] * 2)
    assert got["alerts"] == (twice if "alert_negative" in fired else want["alerts"])


@pytest.mark.parametrize("single_transaction", [False, True], ids=["", "single transaction"])
def test_a_failed_data_only_restore_leaves_the_triggers_disabled(cluster, emulator, fresh_database, dumps, source,
                                                                 single_transaction):
    """A data-only restore with --disable-triggers that fails in a table's
    data (here: the rows are already there, a duplicate key) stops before
    its ENABLE TRIGGER ALL: the table's triggers stay disabled, and new rows
    are no longer scored. With --single-transaction the failure rolls the
    DISABLE back too."""
    name = schema_only_copy(cluster, emulator, fresh_database, dumps)
    restore_data(cluster, dumps, name, "custom --disable-triggers")
    emulator.reset()
    done = subprocess.run([str(cluster.bindir / "pg_restore"), "--data-only", "--disable-triggers", "--exit-on-error",
                           *(["-1"] if single_transaction else []), "-d", cluster.conninfo(name), str(dumps["custom"])],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert 'duplicate key value violates unique constraint "reviews_pkey"' in done.stderr
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        assert enabled(conn) == dict.fromkeys(BOTH, "O" if single_transaction else "D")
        new = conn.execute("INSERT INTO shop.reviews (body) VALUES ('a new review: I love it.') "
                           "RETURNING sentiment IS NOT NULL").fetchone()[0]
    assert new == single_transaction
    assert requests(emulator) == ({("comprehend", "DetectSentiment"): (1, 1)} if single_transaction else {})


def test_a_trigger_that_fails_stops_the_data_only_restore_at_its_row(cluster, emulator, fresh_database, dumps, source):
    """The service refusing review 5's text fails that table's COPY at its
    line: the restore stops there with aws_ml's error, after one request a
    line up to it, and the table has none of its rows (the alerts, loaded
    before it, stay)."""
    name = schema_only_copy(cluster, emulator, fresh_database, dumps)
    emulator.reset()
    emulator.set_faults(service="comprehend", body_contains="review 5:", error_every=1, error_status=400,
                        error_code="AccessDeniedException")
    done = subprocess.run([str(cluster.bindir / "pg_restore"), "--data-only", "--exit-on-error", "-d",
                           cluster.conninfo(name), str(dumps["custom"])], capture_output=True, text=True)
    assert done.returncode == 1
    assert "ERROR:  aws_ml: Comprehend DetectSentiment failed" in done.stderr
    line = int(re.search(r'COPY reviews, line (\d+): "5\treview 5: ', done.stderr).group(1))
    assert requests(emulator) == {("comprehend", "DetectSentiment"): (line, line - 1)}
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        assert contents(conn) == {"reviews": [], "alerts": source[1]["alerts"]}


IMPORT = ("SELECT aws_s3.table_import_from_s3('shop.reviews', '', 'format csv', "
          "aws_commons.create_s3_uri(%s, %s, %s))")
NEW_ROWS = 30  # rows a COPY adds after the restore
GUARDED = {  # a trigger that scores only the rows without a score, and what it sends for a COPY of NEW_ROWS
    "row trigger WHEN (NEW.sentiment IS NULL)": (
        ["CREATE TRIGGER score_review BEFORE INSERT ON shop.reviews FOR EACH ROW "
         "WHEN (NEW.sentiment IS NULL) EXECUTE FUNCTION shop.score_review()"],
        {("comprehend", "DetectSentiment"): (NEW_ROWS, NEW_ROWS)}),
    "statement trigger over its transition table": (
        [SCORE_NEW_REVIEWS, "CREATE TRIGGER score_new_reviews AFTER INSERT ON shop.reviews "
         "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shop.score_new_reviews()"],
        {("comprehend", "BatchDetectSentiment"): (2, NEW_ROWS)}),
}


@pytest.mark.parametrize("trigger", GUARDED)
def test_a_trigger_that_scores_only_unscored_rows_leaves_restored_rows_alone(cluster, emulator, fresh_database,
                                                                            dumps, source, trigger):
    """Restored rows have their score: a data-only restore without
    --disable-triggers sends nothing for them and keeps their values. New
    rows are scored: one request a row by the row trigger, in batches of 25
    (batch mode) by the statement trigger."""
    create, new_rows_cost = GUARDED[trigger]
    name = schema_only_copy(cluster, emulator, fresh_database, dumps)
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("DROP TRIGGER alert_negative ON shop.reviews")
        conn.execute("DROP TRIGGER score_review ON shop.reviews")
        for sql in create:
            conn.execute(sql)
    emulator.reset()
    restore_data(cluster, dumps, name, "custom")
    assert requests(emulator) == {}
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        assert contents(conn)["reviews"] == source[1]["reviews"]
        with conn.cursor().copy("COPY shop.reviews (body) FROM STDIN") as copy:
            for n in range(NEW_ROWS):
                copy.write_row((f"new review {n}: I love it.",))
        assert requests(emulator) == new_rows_cost
        new = conn.execute("SELECT id, body, sentiment, confidence FROM shop.reviews WHERE id > %s ORDER BY id",
                           (ROWS,)).fetchall()
        assert new == [row for row in scored_by_the_service(conn, "shop.reviews") if row[0] > ROWS]


@pytest.mark.parametrize("refused", [False, True], ids=["", "the service refuses review 5"])
def test_an_s3_import_fires_the_triggers_as_copy_does(cluster, emulator, aws_client, fresh_database, dumps, source,
                                                      refused):
    """aws_s3.table_import_from_s3, the RDS way to load a table from a file,
    is a COPY FROM in the calling backend: the table's triggers call aws_ml
    from inside it, one request a row, as in a data-only restore; a refused
    row fails the import with aws_ml's error, the table empty, and the next
    import of the session works."""
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    key = f"reviews/{uuid.uuid4().hex}.csv"
    name = schema_only_copy(cluster, emulator, fresh_database, dumps)
    with psycopg.connect(cluster.conninfo(source[0]), autocommit=True) as conn:
        s3.put_object(Bucket=BUCKET, Key=key, Body=copy_to_stdout(conn, CONTENTS["reviews"], "format csv"))
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_s3")
        emulator.reset()
        if refused:
            emulator.set_faults(service="comprehend", body_contains="review 5:", error_every=1, error_status=400,
                                error_code="AccessDeniedException")
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute(IMPORT, (BUCKET, key, REGION))
            assert caught.value.diag.message_primary == "aws_ml: Comprehend DetectSentiment failed: " \
                "AccessDeniedException (injected by the emulator)"
            assert requests(emulator)[("comprehend", "DetectSentiment")] == (5, 4)
            assert contents(conn)["reviews"] == []
            emulator.reset()
        conn.execute(IMPORT, (BUCKET, key, REGION))
        assert requests(emulator) == {("comprehend", "DetectSentiment"): (ROWS, ROWS), ("s3", "GET"): (1, 1)}
        assert contents(conn)["reviews"] == scored_by_the_service(conn, "shop.reviews")
