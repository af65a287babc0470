"""Backup and restore of a database that uses aws_ml and aws_s3, as users'
SQL builds one: pg_dump in plain format restored with psql, in custom format
restored with pg_restore -j 2, and pg_dumpall --globals-only then the
database on a server that has never seen the extensions. A restore sends
nothing to AWS but the REFRESH MATERIALIZED VIEW that PostgreSQL runs; the
restored database answers, grants and resumes its backfill as the source."""
import datetime
import os
import subprocess
import uuid

import psycopg
import pytest

from tests import test_bedrock, test_comprehend, test_sagemaker
from tests.conftest import create_database, new_cluster
from tests.reference import CLASSIFY_EVENT_4
from tests.s3_support import BUCKET, export
from tests.test_comprehend import SUPPORT_FEEDBACK
from tests.test_upgrade import catalog

ENDPOINT = "sagemaker_model_endpoint_name"  # CLASSIFY_EVENT_4's
COEF = [1.0, 1.0, 2.0]  # as test_sagemaker's test of CLASSIFY_EVENT_4 registers it
NOTES, BATCH, POISON = 40, 10, 25  # the backfill stops at the batch of note POISON

REVIEW = "The restore kept every answer. I love it."
ANSWERS = {
    "wrapper": "SELECT id, models.classify_event(event_type, event_day, amount) FROM models.events ORDER BY id",
    "view": "SELECT * FROM models.support_sentiment ORDER BY id",
    "materialized view": "SELECT * FROM models.support_sentiment_saved ORDER BY id",
    "trigger": f"INSERT INTO models.reviews (body) VALUES ('{REVIEW}') RETURNING sentiment, confidence",
    "backfill": "SELECT id, body, sentiment, confidence FROM models.notes ORDER BY id",
}


def source_sql(member, scorer):
    """The source database as users' SQL makes one (the reference's forms)."""
    return [
        "CREATE EXTENSION aws_ml VERSION '1.0' CASCADE",
        "ALTER EXTENSION aws_ml UPDATE",
        "CREATE EXTENSION aws_s3",
        # the reference's support table, which test_comprehend's support query reads
        "CREATE TABLE support (id serial PRIMARY KEY, feedback text)",
        "CREATE SCHEMA models",
        "SET search_path = models",
        CLASSIFY_EVENT_4,
        "RESET search_path",
        "REVOKE EXECUTE ON FUNCTION models.classify_event(int, date, real, int) FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA models TO {scorer}",
        f"GRANT EXECUTE ON FUNCTION models.classify_event(int, date, real, int) TO {scorer}",
        f"GRANT aws_ml TO {member}, {scorer}",
        "CREATE TABLE models.events (id int PRIMARY KEY, event_type int, event_day date, amount real)",
        "INSERT INTO models.events SELECT n, n % 3, date '2024-01-01' + n, "
        "CASE WHEN n % 5 = 0 THEN NULL ELSE n * 0.5 END FROM pg_catalog.generate_series(1, 30) n",
        "CREATE VIEW models.support_sentiment AS SELECT id, feedback, s.sentiment, s.confidence "
        "FROM public.support, aws_comprehend.detect_sentiment(feedback, 'en') s",
        "CREATE MATERIALIZED VIEW models.support_sentiment_saved AS SELECT * FROM models.support_sentiment",
        "CREATE TABLE models.reviews (id serial PRIMARY KEY, body text, sentiment varchar, confidence real)",
        score_review("models"),
        "CREATE TRIGGER score_review BEFORE INSERT ON models.reviews "
        "FOR EACH ROW EXECUTE FUNCTION models.score_review()",
        "CREATE TABLE models.notes (id int PRIMARY KEY, body text, sentiment varchar, confidence real, "
        "materialized_at timestamptz)",
        f"INSERT INTO models.notes SELECT n, CASE WHEN n = {POISON} THEN 'poison ' ELSE 'note ' END || n || "
        "CASE n % 2 WHEN 0 THEN ': I love it.' ELSE ': I hate it.' END "
        f"FROM pg_catalog.generate_series(1, {NOTES}) n",
    ]


def score_review(schema):
    """The reference's use of a trigger: it fills the score of every new row."""
    return f"""CREATE FUNCTION {schema}.score_review() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT s.sentiment, s.confidence INTO NEW.sentiment, NEW.confidence
        FROM aws_comprehend.detect_sentiment(NEW.body, 'en') s;
        RETURN NEW;
    END $$"""


def scored_by_the_service(conn, table):
    """The rows (id, body) of table with the service's answers for body,
    asked now: what a trigger that scored each row would have written."""
    return conn.execute(f"SELECT id, body, (s).sentiment, (s).confidence FROM (SELECT id, body, "
                        f"aws_comprehend.detect_sentiment(body, 'en') s FROM {table}) r ORDER BY id").fetchall()


def register_endpoint(emulator):
    emulator.register_endpoint(ENDPOINT, model={"kind": "linear", "coef": COEF})


def answers(conn):
    """What the wrapper, the views, the trigger and the backfill answer (the
    trigger's row rolled back)."""
    got = {}
    for name, sql in ANSWERS.items():
        with conn.transaction(force_rollback=True):
            got[name] = conn.execute(sql).fetchall()
    return got


def requests(emulator):
    """{(service, operation): (requests, items)} of every request since the last reset."""
    return {(service, operation): (stats["requests"], stats.get("items"))
            for service, operations in emulator.counters().items() for operation, stats in operations.items()}


@pytest.fixture(scope="module")
def roles(cluster):
    """member: GRANT aws_ml; scorer: GRANT aws_ml and EXECUTE on the wrapper;
    outsider: neither. Dropped at the end, after the databases."""
    names = {kind: f"{kind}_{uuid.uuid4().hex[:8]}" for kind in ("member", "scorer", "outsider")}
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f"CREATE ROLE {name} LOGIN")
    databases = []
    yield names, databases
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for database in databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for name in names.values():
            conn.execute(f"DROP ROLE {name}")


@pytest.fixture(scope="module")
def source(cluster, emulator, roles):
    """The source database, its backfill stopped half-way by a failing batch,
    and its answers."""
    names, databases = roles
    databases.append(create_database(cluster, extension_sql=None))
    register_endpoint(emulator)
    with psycopg.connect(cluster.conninfo(databases[0]), autocommit=True) as conn:
        for sql in source_sql(names["member"], names["scorer"]):
            conn.execute(sql)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO support (feedback) VALUES (%s)", [(text,) for text in SUPPORT_FEEDBACK])
        conn.execute("REFRESH MATERIALIZED VIEW models.support_sentiment_saved")
        emulator.set_faults(service="comprehend", body_contains="poison", error_first=1,
                            error_status=400, error_code="AccessDeniedException")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"CALL aws_comprehend.materialize_sentiment('models.notes', 'body', 'en', "
                         f"batch_size => {BATCH})")
        emulator.clear_faults()
        done = conn.execute("SELECT count(*) FROM models.notes WHERE sentiment IS NOT NULL").fetchone()[0]
        assert done == (POISON - 1) // BATCH * BATCH
        return databases[0], answers(conn), catalog(cluster, databases[0])


def new_database(cluster, roles):
    name = create_database(cluster, extension_sql=None)
    roles[1].append(name)
    return name


def run(program, *args, options=None):
    """Runs a PostgreSQL client program, with options as its PGOPTIONS; its stderr."""
    env = {**os.environ, **({"PGOPTIONS": options} if options else {})}
    done = subprocess.run([str(program), *map(str, args)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stderr


def errors_of(done):
    """psql's error lines, without the file and line number."""
    return [line[line.index("ERROR:"):] for line in done.stderr.splitlines() if "ERROR:" in line]


def check_restored(cluster, restored, source, names, emulator, aws_client):
    """The restored database answers and grants as the source; its backfill
    sends only the rows still to do; the reference's examples run in it."""
    _, want, want_catalog = source
    assert catalog(cluster, restored) == want_catalog
    register_endpoint(emulator)
    with psycopg.connect(cluster.conninfo(restored), autocommit=True) as conn:
        emulator.reset()
        assert answers(conn) == want
        # the wrapper's 30 rows, the view's 10 and the trigger's one row: the
        # backfill's rows were read from the table, not sent
        assert requests(emulator) == {("sagemaker", "InvokeEndpoint"): (2, 30),
                                      ("comprehend", "BatchDetectSentiment"): (1, 10),
                                      ("comprehend", "DetectSentiment"): (1, 1)}
    for user, call, allowed in ((names["scorer"], "models.classify_event(1, '2024-01-01', 1)", True),
                                (names["member"], "models.classify_event(1, '2024-01-01', 1)", False),
                                (names["member"], "aws_comprehend.detect_sentiment('fine', 'en')", True),
                                (names["outsider"], "aws_comprehend.detect_sentiment('fine', 'en')", False)):
        with psycopg.connect(cluster.conninfo(restored, user), autocommit=True) as conn:
            if allowed:
                conn.execute(f"SELECT {call}")
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT {call}")
    with psycopg.connect(cluster.conninfo(restored), autocommit=True) as conn:
        emulator.reset()
        conn.execute("CALL aws_comprehend.materialize_sentiment('models.notes', 'body', 'en')")
        done_before = sum(1 for row in want["backfill"] if row[2] is not None)
        assert requests(emulator)[("comprehend", "BatchDetectSentiment")][1] == NOTES - done_before
        assert conn.execute("SELECT count(*) FROM models.notes WHERE sentiment IS NULL").fetchone() == (0,)
        run_reference_examples(conn, emulator, aws_client)


def run_reference_examples(conn, emulator, aws_client):
    """The reference's examples as test_comprehend, test_sagemaker and
    test_bedrock run them, in the restored database (the support table is
    the restored one)."""
    for example in (test_comprehend.test_reference_support_query_verbatim,
                    test_comprehend.test_reference_clinician_notes_update_verbatim,
                    test_bedrock.test_reference_claude_example_verbatim,
                    test_bedrock.test_reference_titan_embedding_verbatim):
        emulator.reset()
        example(conn, emulator, aws_client)
    conn.execute("CREATE SCHEMA reference_examples")
    conn.execute("SET search_path = reference_examples, public")
    emulator.reset()
    test_sagemaker.test_reference_classify_event_with_batch_size_verbatim(conn, emulator)
    conn.execute("RESET search_path")


def restore_requests(emulator):
    """Only PostgreSQL's REFRESH of the materialized view calls the service:
    the view's ten rows in one batch. COPY loads the tables before their
    triggers exist; views and functions are created, not run."""
    assert requests(emulator) == {("comprehend", "BatchDetectSentiment"): (1, len(SUPPORT_FEEDBACK))}


def test_plain_dump_restored_with_psql(tmp_path, cluster, emulator, aws_client, source, roles):
    dump = tmp_path / "plain.sql"
    run(cluster.bindir / "pg_dump", "-f", dump, "-d", cluster.conninfo(source[0]))
    restored = new_database(cluster, roles)
    emulator.reset()
    run(cluster.bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", dump, "-d", cluster.conninfo(restored))
    restore_requests(emulator)
    check_restored(cluster, restored, source, roles[0], emulator, aws_client)


def test_custom_dump_restored_with_pg_restore_in_two_jobs(tmp_path, cluster, emulator, aws_client, source, roles):
    dump = tmp_path / "custom.dump"
    run(cluster.bindir / "pg_dump", "-Fc", "-f", dump, "-d", cluster.conninfo(source[0]))
    restored = new_database(cluster, roles)
    emulator.reset()
    run(cluster.bindir / "pg_restore", "-j", "2", "--exit-on-error", "-d", cluster.conninfo(restored), dump)
    restore_requests(emulator)
    check_restored(cluster, restored, source, roles[0], emulator, aws_client)


@pytest.mark.slow  # a server of its own
def test_globals_then_database_on_a_new_server(tmp_path, cluster, emulator, aws_client, source, roles):
    """pg_dumpall --globals-only creates the roles aws_ml and aws_s3 (NOLOGIN)
    and the grants of aws_ml before the database's CREATE EXTENSION, which
    adopts them: the restore runs without an error, and aws_ml's attributes
    and members are the source's."""
    globals_dump, dump = tmp_path / "globals.sql", tmp_path / "custom.dump"
    run(cluster.bindir / "pg_dumpall", "--globals-only", "-f", globals_dump, "-d", cluster.conninfo())
    run(cluster.bindir / "pg_dump", "-Fc", "-f", dump, "-d", cluster.conninfo(source[0]))
    server = new_cluster(emulator).start()
    try:
        # the dump's CREATE ROLE postgres fails on any server, as PostgreSQL's
        # documentation says: its only error
        done = subprocess.run([str(server.bindir / "psql"), "-X", "-q", "-f", str(globals_dump), "-d",
                               server.conninfo()], capture_output=True, text=True)
        assert errors_of(done) == ['ERROR:  role "postgres" already exists']
        restored = create_database(server, extension_sql=None)
        emulator.reset()
        run(server.bindir / "pg_restore", "-j", "2", "--exit-on-error", "-d", server.conninfo(restored), dump)
        restore_requests(emulator)
        check_restored(server, restored, source, roles[0], emulator, aws_client)
    finally:
        server.stop()


def test_a_restore_by_a_non_superuser_stops_at_the_first_extension(tmp_path, cluster, source, roles):
    """aws_commons, aws_ml, aws_s3 and plpython3u, which aws_ml requires, are
    untrusted: only a superuser can create them, so only a superuser can
    restore the database (PostgreSQL's rule, docs/operations.md). The dump
    without owners, as a non-superuser restores one."""
    dump = tmp_path / "plain.sql"
    run(cluster.bindir / "pg_dump", "--no-owner", "-f", dump, "-d", cluster.conninfo(source[0]))
    restored = new_database(cluster, roles)
    owner = roles[0]["member"]
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{restored}" OWNER TO {owner}')
    done = subprocess.run([str(cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                           "-f", str(dump), "-d", cluster.conninfo(restored, owner)], capture_output=True, text=True)
    assert done.returncode == 3
    assert errors_of(done) == ['ERROR:  42501: permission denied to create extension "aws_commons"']
    assert "HINT:  Must be superuser to create this extension." in done.stderr


def extension_oids(cluster, name):
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        return dict(conn.execute("SELECT extname, oid FROM pg_catalog.pg_extension").fetchall())


def existing_copy(tmp_path, cluster, emulator, source, roles):
    """A database restored from the source and used since: a review scored
    by the trigger, a note scored by hand."""
    plain = tmp_path / "existing.sql"
    run(cluster.bindir / "pg_dump", "-f", plain, "-d", cluster.conninfo(source[0]))
    existing = new_database(cluster, roles)
    run(cluster.bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", plain, "-d", cluster.conninfo(existing))
    with psycopg.connect(cluster.conninfo(existing), autocommit=True) as conn:
        conn.execute(f"INSERT INTO models.reviews (body) VALUES ('{REVIEW}')")
        conn.execute("UPDATE models.notes SET sentiment = 'MIXED' WHERE id = 1")
    return existing


CLEAN_RESTORES = {
    "pg_dump --clean --if-exists | psql": (
        ("--clean", "--if-exists"), ("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "{dump}", "-d", "{db}")),
    "pg_restore --clean --if-exists": (
        ("-Fc",), ("pg_restore", "--clean", "--if-exists", "--exit-on-error", "-d", "{db}", "{dump}")),
}


def clean_restore(tmp_path, cluster, source, how, existing, *extra):
    """Dumps the source as how says and restores it over existing; extra:
    the restoring program's further options."""
    dump_options, command = CLEAN_RESTORES[how]
    dump = tmp_path / "clean.dump"
    run(cluster.bindir / "pg_dump", *dump_options, "-f", dump, "-d", cluster.conninfo(source[0]))
    arguments = [part.format(dump=dump, db=cluster.conninfo(existing)) for part in command[1:]]
    return subprocess.run([str(cluster.bindir / command[0]), *extra, *arguments], capture_output=True, text=True)


@pytest.mark.parametrize("how", CLEAN_RESTORES)
def test_clean_restore_over_a_database_that_uses_the_extensions(tmp_path, cluster, emulator, aws_client, source,
                                                                 roles, how):
    """--clean --if-exists drops every object of the dump, the extensions
    last, and creates them again: aws_commons, aws_ml, aws_s3 and plpython3u
    are new extensions (new OIDs), whose grants and pg_init_privs are a fresh
    install's; the roles aws_ml and aws_s3, global, keep their members. The
    restore sends only the materialized view's REFRESH, and the database is
    the source's again."""
    existing = existing_copy(tmp_path, cluster, emulator, source, roles)
    before = extension_oids(cluster, existing)
    emulator.reset()
    done = clean_restore(tmp_path, cluster, source, how, existing)
    assert done.returncode == 0, done.stderr
    restore_requests(emulator)
    after = extension_oids(cluster, existing)
    assert after.keys() == before.keys()
    assert {name for name in after if after[name] != before[name]} == {
        "aws_commons", "aws_ml", "aws_s3", "plpython3u"}
    check_restored(cluster, existing, source, roles[0], emulator, aws_client)


def relations_and_extensions(cluster, name):
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        return (conn.execute("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c "
                             "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname IN ('public', 'models') AND c.relkind IN ('r', 'v', 'm') ORDER BY 1"
                             ).fetchall(),
                conn.execute("SELECT extname FROM pg_catalog.pg_extension ORDER BY 1").fetchall(),
                conn.execute("SELECT * FROM models.notes ORDER BY id").fetchall()
                if conn.execute("SELECT to_regclass('models.notes')").fetchone()[0] else None)


@pytest.mark.parametrize("how", CLEAN_RESTORES)
@pytest.mark.parametrize("single_transaction", [False, True], ids=["", "single transaction"])
def test_clean_restore_stops_at_an_object_the_dump_does_not_know(tmp_path, cluster, emulator, source, roles, how,
                                                                single_transaction):
    """A view created after the dump over an aws_ml function makes the
    dump's DROP EXTENSION IF EXISTS aws_ml fail (2BP01), after the dump's
    tables, views and aws_s3 have been dropped: the restore stops with the
    database emptied of them. With --single-transaction (-1) the failure
    rolls everything back, and the database is as it was. No request is
    sent either way."""
    existing = existing_copy(tmp_path, cluster, emulator, source, roles)
    with psycopg.connect(cluster.conninfo(existing), autocommit=True) as conn:
        conn.execute("CREATE VIEW public.later AS "
                     "SELECT s.sentiment FROM aws_comprehend.detect_sentiment('fine', 'en') s")
    before = relations_and_extensions(cluster, existing)
    emulator.reset()
    done = clean_restore(tmp_path, cluster, source, how, existing, *(["-1"] if single_transaction else []))
    assert done.returncode != 0
    assert errors_of(done) == ["ERROR:  cannot drop extension aws_ml because other objects depend on it"]
    assert requests(emulator) == {}
    after = relations_and_extensions(cluster, existing)
    if single_transaction:
        assert after == before
    else:
        assert after == ([("public.later",)], [(name,) for name in ("aws_commons", "aws_ml", "plpgsql", "plpython3u")],
                         None)


@pytest.mark.parametrize("how", CLEAN_RESTORES)
def test_clean_restore_keeps_the_grants_made_on_the_extensions_objects(tmp_path, cluster, emulator, roles, how):
    """Grants and revokes made on the extensions' own objects after they
    were installed are dumped as changes from pg_init_privs: restored over
    the database with --clean, the recreated extensions have them again,
    and pg_init_privs is a fresh install's."""
    names = roles[0]
    existing = new_database(cluster, roles)
    with psycopg.connect(cluster.conninfo(existing), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
        conn.execute("CREATE EXTENSION aws_s3")
        conn.execute(f"GRANT USAGE ON SCHEMA aws_comprehend TO {names['outsider']}")
        conn.execute("GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) "
                     f"TO {names['outsider']}")
        conn.execute("REVOKE EXECUTE ON FUNCTION aws_bedrock.invoke_model(varchar, text, text, text) FROM aws_ml")
        conn.execute(f"GRANT aws_ml TO {names['member']}")
    before, oids = catalog(cluster, existing), extension_oids(cluster, existing)
    emulator.reset()
    done = clean_restore(tmp_path, cluster, (existing,), how, existing)
    assert done.returncode == 0, done.stderr
    assert requests(emulator) == {}
    assert catalog(cluster, existing) == before
    assert extension_oids(cluster, existing)["aws_ml"] != oids["aws_ml"]
    with psycopg.connect(cluster.conninfo(existing, names["outsider"]), autocommit=True) as conn:
        assert conn.execute("SELECT (aws_comprehend.detect_sentiment('I love it.', 'en')).sentiment").fetchone() == (
            "POSITIVE",)
    with psycopg.connect(cluster.conninfo(existing, names["member"]), autocommit=True) as conn:
        conn.execute("SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
                     "'application/json', 'embedding', '{\"inputText\": \"fine\"}')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT aws_bedrock.invoke_model('amazon.titan-text-express-v1', 'application/json', "
                         "'application/json', '{}')")


@pytest.mark.parametrize("how", CLEAN_RESTORES)
def test_a_session_open_across_a_clean_restore_answers_as_a_new_one(tmp_path, cluster, emulator, aws_client, source,
                                                                    roles, how):
    """A session that used every kind of call (the wrapper over the C
    function, batch mode, the trigger, the backfill, aws_s3's export) before
    the --clean restore dropped and recreated the extensions keeps working
    after it, with the new functions: the same answers and requests as a
    new session, batch mode included."""
    existing = existing_copy(tmp_path, cluster, emulator, source, roles)
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    register_endpoint(emulator)
    with psycopg.connect(cluster.conninfo(existing), autocommit=True) as kept:
        answers(kept)
        export(kept, "SELECT 1", "before")
        kept.execute("CALL aws_comprehend.materialize_sentiment('models.notes', 'body', 'en')")
        done = clean_restore(tmp_path, cluster, source, how, existing)
        assert done.returncode == 0, done.stderr
        register_endpoint(emulator)
        emulator.reset()
        assert answers(kept) == source[1]
        assert requests(emulator) == {("sagemaker", "InvokeEndpoint"): (2, 30),
                                      ("comprehend", "BatchDetectSentiment"): (1, 10),
                                      ("comprehend", "DetectSentiment"): (1, 1)}
        assert export(kept, "SELECT 1, 'after'", "after") == (1, 1, 8)
        assert s3.get_object(Bucket=BUCKET, Key="after")["Body"].read() == b"1\tafter\n"
