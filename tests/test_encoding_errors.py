"""Errors of the SQL a backfill runs, in databases whose encoding is not
UTF8, against the same failures in UTF8. PL/Python reads an error's texts as
UTF-8: outside UTF8, aws_ml makes them ASCII beneath the backfill and gives
them back as they were when the error leaves it (python/plpython_errors.c).
Each failure must reach SQL as in UTF8, SQLSTATE, texts, object names and
CONTEXT; the session must go on."""
import psycopg
import pytest

from tests.conftest import create_database, in_encoding

ENCODINGS = ["LATIN1", "EUC_JP", "SQL_ASCII"]

TABLE = '"n\u00f6tes"'
TABLE_DDL = f"CREATE TABLE {TABLE} (id int, body text, s\u00e9ntiment text, confidence real)"

PARENT = ('CREATE TABLE "p\u00e4rent" (s text PRIMARY KEY); '
          "INSERT INTO \"p\u00e4rent\" VALUES ('NEGATIVE'); ")
REFUSE = ("CREATE FUNCTION \"r\u00e9fuse\"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
          "RAISE EXCEPTION 'refus\u00e9 \u00e0 la validation' USING DETAIL = 'd\u00e9tail', "
          "HINT = 'indic\u00e9', COLUMN = 's\u00e9ntiment', CONSTRAINT = 'r\u00e8gle'; END$$; ")

# a function of the user's that PostgreSQL runs while it plans a query (IMMUTABLE) or starts it (STABLE)
CHECKER = ("CREATE FUNCTION \"v\u00e9rifie\"() RETURNS int {} LANGUAGE plpgsql AS $$BEGIN "
           "RAISE EXCEPTION 'refus\u00e9 au d\u00e9part' USING DETAIL = 'd\u00e9tail', HINT = 'indic\u00e9', "
           "TABLE = 'n\u00f6tes', CONSTRAINT = 'r\u00e8gle'; END$$; ")
PARTS = ('CREATE TABLE "p\u00e4rts" (k int) PARTITION BY LIST (k); '
         'CREATE TABLE "p\u00e4rt_1" PARTITION OF "p\u00e4rts" FOR VALUES IN (1); ')

# where a backfill's write of POSITIVE fails: inside the UPDATE, after it, at the batch's commit, while
# its UPDATE is planned or started (the table's rule runs the function)
FAILURES = {
    "check constraint": f'ALTER TABLE {TABLE} ADD CONSTRAINT "ch\u00ebck" CHECK (s\u00e9ntiment <> \'POSITIVE\')',
    "unique index": f'CREATE UNIQUE INDEX "\u00fcnique" ON {TABLE} (s\u00e9ntiment)',
    "foreign key": PARENT + f'ALTER TABLE {TABLE} ADD CONSTRAINT "f\u00f6reign" FOREIGN KEY (s\u00e9ntiment) '
                            'REFERENCES "p\u00e4rent"',
    "deferred foreign key": PARENT + f'ALTER TABLE {TABLE} ADD CONSTRAINT "f\u00f6reign" FOREIGN KEY '
                                     '(s\u00e9ntiment) REFERENCES "p\u00e4rent" DEFERRABLE INITIALLY DEFERRED',
    "domain": 'CREATE DOMAIN "s\u00e9ntiment_d" AS text CONSTRAINT "n\u00f6t_positive" '
              "CHECK (VALUE <> 'POSITIVE'); "
              f'ALTER TABLE {TABLE} ALTER s\u00e9ntiment TYPE "s\u00e9ntiment_d"',
    "BEFORE trigger": REFUSE + f'CREATE TRIGGER "b\u00e9fore" BEFORE UPDATE ON {TABLE} FOR EACH ROW '
                               'EXECUTE FUNCTION "r\u00e9fuse"()',
    "deferred constraint trigger": REFUSE + f'CREATE CONSTRAINT TRIGGER "\u00e0_commit" AFTER UPDATE ON {TABLE} '
                                            'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION '
                                            '"r\u00e9fuse"()',
    "rule folded by the planner": CHECKER.format("IMMUTABLE") + f'CREATE RULE "r\u00e9gle" AS ON UPDATE TO {TABLE} '
                                                               'DO ALSO SELECT "v\u00e9rifie"()',
    "rule pruning at the executor's start": PARTS + CHECKER.format("STABLE") + (
        f'CREATE RULE "r\u00e9gle" AS ON UPDATE TO {TABLE} DO ALSO SELECT * FROM "p\u00e4rts" '
        'WHERE k = "v\u00e9rifie"()'),
}

FIELDS = ("sqlstate", "message_primary", "message_detail", "message_hint", "schema_name", "table_name",
          "column_name", "datatype_name", "constraint_name", "context")


@pytest.fixture(scope="module")
def databases(cluster):
    names = {encoding: create_database(cluster, options=in_encoding(encoding))
             for encoding in ["UTF8", *ENCODINGS]}
    yield names
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def table_with(connect, database, failure):
    """A connection to database, where the table is made to fail as failure says."""
    conn = connect(dbname=database, client_encoding="UTF8")
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}, \"p\u00e4rent\", \"p\u00e4rts\"; "
                 "DROP DOMAIN IF EXISTS \"s\u00e9ntiment_d\"; DROP FUNCTION IF EXISTS \"r\u00e9fuse\", \"v\u00e9rifie\"")
    conn.execute(TABLE_DDL)
    conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'I love it'), (2, 'I love it too')")
    conn.execute(FAILURES[failure])
    # the module loaded, a CALL's errors read as PostgreSQL's own (docs/errors.md)
    conn.execute("LOAD '$libdir/plugins/aws_ml'")
    return conn


def failure_in(connect, database, failure, caller):
    conn = table_with(connect, database, failure)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(caller.format(f"CALL aws_comprehend.materialize_sentiment('{TABLE}', 'body', 'en', "
                                   "'s\u00e9ntiment')"))
    return conn, caught.value.diag


@pytest.mark.parametrize("caller", ["{}", "DO $$BEGIN {}; END$$"], ids=["CALL", "DO"])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("failure", FAILURES)
def test_a_backfills_error_reads_as_in_utf8(databases, connect, emulator, encoding, failure, caller):
    emulator.reset()
    _, expected = failure_in(connect, databases["UTF8"], failure, caller)
    conn, diag = failure_in(connect, databases[encoding], failure, caller)
    assert expected.sqlstate.startswith(("23", "P0"))
    assert {field: getattr(diag, field) for field in FIELDS} == {
        field: getattr(expected, field) for field in FIELDS}
    assert conn.execute(f"SELECT count(s\u00e9ntiment) FROM {TABLE}").fetchone() == (0,)
    # the session and PL/Python go on: another error, then a call
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT aws_comprehend.detect_sentiment('x', 'xx')")
    assert conn.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone() == (
        "POSITIVE",)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_callers_deferred_error_at_a_backfills_first_commit_reads_as_in_utf8(databases, connect, emulator,
                                                                                  encoding):
    """A procedure CALLs the backfill after a statement of its own broke a
    deferred foreign key: the backfill's first COMMIT checks it."""
    def failure(database):
        conn = table_with(connect, database, "deferred foreign key")
        conn.execute('CREATE OR REPLACE PROCEDURE "pr\u00e9pare"() LANGUAGE plpgsql AS $$BEGIN '
                     f"UPDATE {TABLE} SET s\u00e9ntiment = 'POSITIVE' WHERE id = 1; "
                     f"CALL aws_comprehend.materialize_sentiment('{TABLE}', 'body', 'en', 's\u00e9ntiment'); END$$")
        with pytest.raises(psycopg.Error) as caught:
            conn.execute('CALL "pr\u00e9pare"()')
        return conn, caught.value.diag

    emulator.reset()
    _, expected = failure(databases["UTF8"])
    conn, diag = failure(databases[encoding])
    assert expected.sqlstate == "23503"
    assert {field: getattr(diag, field) for field in FIELDS} == {field: getattr(expected, field) for field in FIELDS}
    assert emulator.counters() == {}
    assert conn.execute(f"SELECT count(s\u00e9ntiment) FROM {TABLE}").fetchone() == (0,)
