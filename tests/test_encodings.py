"""aws_ml in a database whose encoding is not UTF8 (LATIN1 here). PL/Python
hands query texts to PostgreSQL as UTF-8 and reads an error's texts as
UTF-8, whatever the database's encoding: backfills must quote non-ASCII
names so that they survive, and an error with a non-ASCII text must reach
SQL with its SQLSTATE instead of breaking PL/Python, which crashed the
server at the next error."""
import threading

import psycopg
import pytest

from tests.conftest import counter, create_database, in_encoding, wait_until


@pytest.fixture(scope="module")
def latin1_database(cluster):
    name = create_database(cluster, options=in_encoding("LATIN1"))
    yield name
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def latin1(connect, latin1_database, emulator):
    emulator.reset()
    return connect(dbname=latin1_database)


def sql_error(conn, sql):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    return caught.value.diag


def still_whole(conn):
    """The session and PL/Python still work: another error, then a call."""
    assert sql_error(conn, "SELECT aws_comprehend.detect_sentiment('x', 'xx')").sqlstate == "22023"
    assert conn.execute("SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment").fetchone() == (
        "POSITIVE",)


def test_a_backfill_fills_a_table_and_columns_named_outside_ascii(latin1, emulator):
    latin1.execute('CREATE TABLE "r\u00e9sum\u00e9s" (id int, "t\u00ebxt" text, "s\u00e9ntiment" text, '
                   '"c\u00f6nfidence" real)')
    latin1.execute('INSERT INTO "r\u00e9sum\u00e9s" VALUES (1, \'I love this caf\u00e9\'), '
                   "(2, 'I hate this place')")
    latin1.execute("CALL aws_comprehend.materialize_sentiment('\"r\u00e9sum\u00e9s\"', 't\u00ebxt', 'en', "
                   "'s\u00e9ntiment', 'c\u00f6nfidence')")
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 2
    rows = latin1.execute('SELECT "s\u00e9ntiment", "c\u00f6nfidence" = (aws_comprehend.detect_sentiment('
                          '"t\u00ebxt", \'en\')).confidence FROM "r\u00e9sum\u00e9s" ORDER BY id').fetchall()
    assert rows == [("POSITIVE", True), ("NEGATIVE", True)]
    # a message names them as quote_ident does
    diag = sql_error(latin1, "CALL aws_comprehend.materialize_sentiment('\"r\u00e9sum\u00e9s\"', 'n\u00f6', 'en')")
    assert diag.sqlstate == "42703"
    assert diag.message_primary == 'aws_ml: materialize_sentiment: public."r\u00e9sum\u00e9s" has no column "n\u00f6"'


def test_an_error_with_non_ascii_text_reaches_sql_with_its_sqlstate(latin1):
    latin1.execute('CREATE TABLE "t\u00eb" (id int, body text, '
                   'sentiment text CONSTRAINT "ch\u00ebck" CHECK (sentiment <> \'NEGATIVE\'), confidence real)')
    latin1.execute('INSERT INTO "t\u00eb" VALUES (1, \'I hate this caf\u00e9\')')
    # a session's CALL reads like PostgreSQL's own once the module is loaded (docs/errors.md)
    latin1.execute("LOAD '$libdir/plugins/aws_ml'")
    for _ in range(2):
        diag = sql_error(latin1, "CALL aws_comprehend.materialize_sentiment('\"t\u00eb\"', 'body', 'en')")
        assert diag.sqlstate == "23514"
        assert diag.message_primary == 'new row for relation "t\u00eb" violates check constraint "ch\u00ebck"'
        assert diag.message_detail.startswith("Failing row contains (1, I hate this caf\u00e9, NEGATIVE, ")
        assert (diag.table_name, diag.constraint_name) == ("t\u00eb", "ch\u00ebck")
    still_whole(latin1)


def test_a_deferred_trigger_failing_at_a_batch_commit(latin1):
    latin1.execute("CREATE TABLE notes (id int, body text, sentiment text, confidence real)")
    latin1.execute("INSERT INTO notes VALUES (1, 'I love it')")
    latin1.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$BEGIN RAISE EXCEPTION 'refus\u00e9 \u00e0 la validation'; END$$")
    latin1.execute("CREATE CONSTRAINT TRIGGER at_commit AFTER UPDATE ON notes DEFERRABLE INITIALLY DEFERRED "
                   "FOR EACH ROW EXECUTE FUNCTION refuse()")
    # a session's CALL reads like PostgreSQL's own once the module is loaded (docs/errors.md)
    latin1.execute("LOAD '$libdir/plugins/aws_ml'")
    diag = sql_error(latin1, "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert (diag.sqlstate, diag.message_primary) == (
        "P0001", "refus\u00e9 \u00e0 la validation")
    assert latin1.execute("SELECT sentiment FROM notes").fetchone() == (None,)
    still_whole(latin1)


@pytest.mark.parametrize("encoding", ["LATIN1", "UTF8"])
def test_a_backfill_quotes_names_with_quotes_and_backslashes(encoding, latin1, db, emulator):
    conn = latin1 if encoding == "LATIN1" else db
    name = 'we"ird\\ t\u00eb' + ("" if encoding == "LATIN1" else "\U0001f600")
    quoted = '"' + name.replace('"', '""') + '"'
    conn.execute(f"DROP TABLE IF EXISTS {quoted}")
    conn.execute(f"CREATE TABLE {quoted} ({quoted} text, sentiment text, confidence real)")
    conn.execute(f"INSERT INTO {quoted} VALUES ('I love it')")
    conn.execute("CALL aws_comprehend.materialize_sentiment(%s, %s, 'en')", (quoted, name))
    assert conn.execute(f"SELECT sentiment FROM {quoted}").fetchall() == [("POSITIVE",)]
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 1


@pytest.fixture
def database_in(cluster, connect, emulator):
    """database_in(encoding): a connection to a new database in that encoding, with aws_ml."""
    names = []

    def make(encoding):
        names.append(create_database(cluster, options=in_encoding(encoding)))
        return connect(dbname=names[-1], client_encoding="UTF8")
    emulator.reset()
    yield make
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_sql_ascii_takes_names_and_errors_as_the_client_wrote_them(database_in, emulator):
    """SQL_ASCII keeps the bytes a client sends, UTF-8 here: names need no
    escapes (PostgreSQL cannot convert them to SQL_ASCII), and an error
    whose texts are valid UTF-8 reaches SQL as it is."""
    conn = database_in("SQL_ASCII")
    conn.execute('CREATE TABLE "t\u00ebst" (id int, "b\u00f6dy" text, sentiment text '
                 'CONSTRAINT "p\u00f6sitive" CHECK (sentiment <> \'NEGATIVE\'), confidence real)')
    conn.execute('INSERT INTO "t\u00ebst" VALUES (1, \'I love this caf\u00e9\')')
    conn.execute("CALL aws_comprehend.materialize_sentiment('\"t\u00ebst\"', 'b\u00f6dy', 'en')")
    assert conn.execute('SELECT sentiment FROM "t\u00ebst"').fetchall() == [("POSITIVE",)]
    conn.execute('INSERT INTO "t\u00ebst" VALUES (2, \'I hate this caf\u00e9\')')
    diag = sql_error(conn, "CALL aws_comprehend.materialize_sentiment('\"t\u00ebst\"', 'b\u00f6dy', 'en')")
    assert diag.sqlstate == "23514"
    assert 'relation "t\u00ebst" violates check constraint "p\u00f6sitive"' in diag.message_primary
    assert diag.message_detail.startswith("Failing row contains (2, I hate this caf\u00e9, NEGATIVE, ")
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "items") == 2


def test_a_column_whose_name_converts_to_another_is_refused(database_in):
    """EUC_JP has two characters for U+2252: the NEC extension's 0xADF0 and
    JIS's 0xA2E2. PL/Python gives both as U+2252, which PostgreSQL converts
    back to JIS's: a backfill naming a column with NEC's would write another
    column or none. (A client in UTF8 cannot tell them apart either: the
    names are made in SQL.)"""
    conn = database_in("EUC_JP")
    nec = "convert_from('\\xadf0', 'EUC_JP')"
    conn.execute(f"""DO $$BEGIN
        EXECUTE format('CREATE TABLE notes (id int, %I text, sentiment text, confidence real)', {nec});
        EXECUTE format('INSERT INTO notes (id, %I) VALUES (1, ''I love it'')', {nec});
    END$$""")
    diag = sql_error(conn, f"CALL aws_comprehend.materialize_sentiment('notes', {nec}, 'en')")
    assert (diag.sqlstate, diag.message_primary) == (
        "0A000", "aws_ml: materialize_sentiment: public.notes and its columns cannot be named in SQL in this "
                 "database's encoding (EUC_JP): a character of a name converts to another, or another table or "
                 "column has a name that is the same in Unicode")
    assert conn.execute("SELECT sentiment FROM notes").fetchall() == [(None,)]


def test_a_primary_key_whose_name_is_another_columns_in_unicode_is_refused(database_in):
    """A Citus reference table's backfill names its rows by the primary key
    (row_address.py), whose name goes into the backfill's SQL. Named with
    EUC_JP's NEC character for U+2252 beside a column named with JIS's, the
    SQL would order and update the rows by the JIS column. Called from a DO
    block: the reference-table path needs Citus, which the suite runs in UTF8."""
    conn = database_in("EUC_JP")
    conn.execute("""DO $$BEGIN
        EXECUTE format('CREATE TABLE nec (%I int PRIMARY KEY, %I int, body text)',
                       convert_from('\\xadf0', 'EUC_JP'), convert_from('\\xa2e2', 'EUC_JP'));
    END$$""")
    conn.execute('CREATE TABLE numbered ("\u756a\u53f7" int PRIMARY KEY, body text)')
    conn.execute("LOAD '$libdir/plugins/aws_ml'")
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    conn.execute("""DO $$
from aws_ml import row_address
from aws_ml.errors import AwsMlError
for table in ("nec", "numbered"):
    relid = plpy.execute(f"SELECT '{table}'::regclass::oid AS oid")[0]["oid"]
    try:
        plpy.notice(row_address.primary_key("materialize_sentiment", relid, f"public.{table}", "").expression)
    except AwsMlError as error:
        plpy.notice(f"{error.sqlstate} {error.message}")
$$ LANGUAGE plpython3u""")
    assert notices == [
        "0A000 materialize_sentiment: public.nec and its columns cannot be named in SQL in this database's encoding "
        "(EUC_JP): a character of a name converts to another, or another table or column has a name that is the "
        "same in Unicode",
        'U&"\\756A\\53F7"']


def test_a_table_whose_name_is_another_tables_in_unicode_is_refused(database_in):
    """Tables named with EUC_JP's NEC and JIS characters for U+2252: PL/Python
    gives the procedure either name as U+2252, which resolves to the JIS one.
    The backfill must not fill a table the caller may not have meant."""
    conn = database_in("EUC_JP")
    for code, body in (("\\xadf0", "I love the NEC table"), ("\\xa2e2", "I hate the JIS table")):
        conn.execute(f"""DO $$BEGIN
            EXECUTE format('CREATE TABLE %I (id int, body text, sentiment text, confidence real)',
                           convert_from('{code}', 'EUC_JP'));
            EXECUTE format('INSERT INTO %I VALUES (1, %L)', convert_from('{code}', 'EUC_JP'), '{body}');
        END$$""")
    conn.execute("CREATE FUNCTION sentiment_of(t regclass) RETURNS text LANGUAGE plpgsql AS "
                 "$$DECLARE s text; BEGIN EXECUTE format('SELECT sentiment FROM %s', t) INTO s; RETURN s; END$$")
    for code in ("\\xadf0", "\\xa2e2"):
        diag = sql_error(conn, f"CALL aws_comprehend.materialize_sentiment(convert_from('{code}', 'EUC_JP')::regclass, "
                               "'body', 'en')")
        assert diag.sqlstate == "0A000"
    assert conn.execute("SELECT sentiment_of(convert_from('\\xadf0', 'EUC_JP')::regclass), "
                        "sentiment_of(convert_from('\\xa2e2', 'EUC_JP')::regclass)").fetchone() == (None, None)


def test_a_schema_whose_name_is_another_schemas_in_unicode_is_refused(database_in, emulator):
    """PL/Python gives the procedure its table_name, a regclass, as text:
    schema-qualified, which outside the search_path it is, and in Unicode,
    where NEC's 0xADF0 and JIS's 0xA2E2 are both U+2252. Both resolve to the
    JIS schema's table, which the caller of the NEC one did not mean."""
    conn = database_in("EUC_JP")
    for code in ("\\xadf0", "\\xa2e2"):
        conn.execute(f"""DO $$BEGIN
            EXECUTE format('CREATE SCHEMA %I', convert_from('{code}', 'EUC_JP'));
            EXECUTE format('CREATE TABLE %I.notes (id int, body text, sentiment text, confidence real)',
                           convert_from('{code}', 'EUC_JP'));
            EXECUTE format('INSERT INTO %I.notes VALUES (1, ''I love it'')', convert_from('{code}', 'EUC_JP'));
        END$$""")
    conn.execute("CREATE FUNCTION sentiment_of(schema text) RETURNS text LANGUAGE plpgsql AS $$DECLARE s text; "
                 "BEGIN EXECUTE format('SELECT sentiment FROM %I.notes', schema) INTO s; RETURN s; END$$")
    for code in ("\\xadf0", "\\xa2e2"):
        diag = sql_error(conn, "CALL aws_comprehend.materialize_sentiment("
                               f"quote_ident(convert_from('{code}', 'EUC_JP')) || '.notes', 'body', 'en')")
        assert (diag.sqlstate, diag.message_primary) == (
            "0A000", 'aws_ml: materialize_sentiment: "\u2252".notes and its columns cannot be named in SQL in this '
                     "database's encoding (EUC_JP): another schema has a name that is the same in Unicode as the "
                     "table's schema")
    assert conn.execute("SELECT sentiment_of(convert_from('\\xadf0', 'EUC_JP')), "
                        "sentiment_of(convert_from('\\xa2e2', 'EUC_JP'))").fetchone() == (None, None)
    assert emulator.counters() == {}


def waiting_for_a_lock(watcher, pid):
    return lambda: watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                   (pid,)).fetchone() == ("Lock",)


@pytest.mark.parametrize("change, error", [
    ("DROP TABLE notes", ("42P01", "aws_ml: materialize_sentiment: public.notes was dropped")),
    ("ALTER TABLE notes DROP COLUMN sentiment",
     ("42703", "aws_ml: materialize_sentiment: a column of public.notes that it reads or writes was dropped")),
])
def test_a_table_changed_while_the_check_of_its_names_waits_for_it(database_in, connect, change, error):
    """The check of the names (extension/src/unicode_names.c, called through
    ctypes, where no error may be raised) waits for the table that another
    transaction changes; once that commits, the table or the column it read
    is gone, and it says so."""
    conn = database_in("EUC_JP")
    conn.execute("CREATE TABLE notes (id int, body text, sentiment text, confidence real)")
    changer, watcher = connect(dbname=conn.info.dbname), connect(dbname=conn.info.dbname)
    changer.execute("BEGIN")
    changer.execute(change)

    def commit_once_the_check_waits():
        wait_until(waiting_for_a_lock(watcher, conn.info.backend_pid), "the check waiting for the table")
        changer.execute("COMMIT")
    thread = threading.Thread(target=commit_once_the_check_waits)
    thread.start()
    diag = sql_error(conn, "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    thread.join()
    assert (diag.sqlstate, diag.message_primary) == error
    still_whole(conn)


def test_a_lock_timeout_while_the_check_of_its_names_waits(database_in, connect, emulator):
    """The server's error that stops the check (through ctypes) is rolled
    back with it and raised as the server raised it; the session goes on."""
    conn = database_in("EUC_JP")
    conn.execute("CREATE TABLE notes (id int, body text, sentiment text, confidence real)")
    conn.execute("INSERT INTO notes VALUES (1, 'I love it')")
    holder = connect(dbname=conn.info.dbname)
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE notes")
    conn.execute("LOAD '$libdir/plugins/aws_ml'")  # so that the CALL's errors read like PostgreSQL's own
    conn.execute("SET lock_timeout = '100ms'")
    diag = sql_error(conn, "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert (diag.sqlstate, diag.message_primary) == ("55P03", "canceling statement due to lock timeout")
    holder.execute("ROLLBACK")
    assert emulator.counters() == {}
    conn.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    assert conn.execute("SELECT sentiment FROM notes").fetchall() == [("POSITIVE",)]
    still_whole(conn)


def test_an_aws_message_with_characters_the_database_lacks(latin1):
    """PL/Python refuses to hand PostgreSQL a text it cannot convert to the
    database's encoding (22P05): the AWS message is kept, those characters
    written as escapes."""
    # JSON's escapes: the client cannot send these characters in LATIN1 either
    diag = sql_error(latin1, "SELECT aws_bedrock.invoke_model('cohere.embed-english-v3', 'application/json', "
                             "'application/json', '{\"texts\": [\"a\"], \"input_type\": "
                             "\"caf\u00e9 \\u20ac\\ud83d\\ude00\"}')")
    assert diag.sqlstate == "22023"
    assert diag.message_primary.startswith("aws_ml: Bedrock InvokeModel failed: ")
    assert "caf\u00e9 \\u20ac\\U0001f600 is not a valid enum value" in diag.message_primary
    still_whole(latin1)


def test_a_setting_in_the_database_encoding_is_read(latin1, emulator):
    latin1.execute("SET aws_ml.region = 'eu-w\u00e9st-1'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        latin1.execute("SELECT aws_comprehend.detect_sentiment('I love it', 'en')")
    assert caught.value.diag.message_primary.startswith("aws_ml: the AWS Region 'eu-w\u00e9st-1' ")
    assert emulator.counters() == {}


def test_the_copies_of_an_error_made_readable_are_freed(latin1):
    """The guard copies an error to rewrite it: its memory must not outlive
    the error (a 10 MB message kept about 78 MB for the session's life)."""
    latin1.execute("CREATE TABLE big (id int, body text, sentiment text, confidence real)")
    latin1.execute("INSERT INTO big VALUES (1, 'I love it')")
    latin1.execute("CREATE FUNCTION refuse_big() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
                   "RAISE EXCEPTION '%', repeat(chr(233), TG_ARGV[0]::int); END$$")
    latin1.execute("LOAD '$libdir/plugins/aws_ml'")

    def guard_bytes_after_an_error_of(characters):
        latin1.execute("DROP TRIGGER IF EXISTS refuse_big ON big")
        latin1.execute(f"CREATE TRIGGER refuse_big BEFORE UPDATE ON big FOR EACH ROW "
                       f"EXECUTE FUNCTION refuse_big({characters})")
        diag = sql_error(latin1, "CALL aws_comprehend.materialize_sentiment('big', 'body', 'en')")
        assert (diag.sqlstate, diag.message_primary) == ("P0001", "\u00e9" * characters)
        return latin1.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts "
                              "WHERE name IN ('aws_ml error guard', 'aws_ml error original')").fetchone()[0]
    assert guard_bytes_after_an_error_of(10_000_000) == guard_bytes_after_an_error_of(10)
