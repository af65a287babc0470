"""An import in a read-only transaction against COPY FROM STDIN into the
same table_name in the same transaction, the reference: where COPY writes,
the import writes; where COPY is refused as read-only (25006), the import is
refused with 25006 before any download (read_only.py). Generated over the
ways a table_name can be written and the tables it may name: temporary,
permanent, one shadowing the other, names quoted with dots, spaces and
uppercase, Unicode escapes, comments, a column list after the name, views
with an INSTEAD OF trigger, partitioned tables and inheritance parents and
children; the transaction made read-only by BEGIN READ ONLY, by SET
TRANSACTION READ ONLY after its first statement, or by
default_transaction_read_only."""
import itertools
import uuid

import psycopg
import pytest

from tests.conftest import REGION, create_database, in_encoding
from tests.s3_support import (BUCKET, copy_from_stdin_error, new_key, s3, s3_database,  # noqa: F401 (fixtures)
                              sql_error)
from tests.test_dump_restore import requests

# (name as created, permanent?, temporary?)
TABLES = [("plain", True, False), ("only_temp", False, True), ("shadow", True, True),
          ("Odd.Name x", False, True), ("Odd.Name y", True, False), ("dat", False, True), ("pdat", True, False),
          ("u", False, True)]  # U&"..." read as u by parse_ident

# how a table_name may name them; {c}: a column list
SPELLINGS = ["plain", "only_temp", "shadow", "public.shadow", "pg_temp.shadow", "pg_temp.only_temp",
             '"Odd.Name x"', '"Odd.Name y"', 'pg_temp."Odd.Name x"', 'public."Odd.Name y"', "ONLY_TEMP",
             '"only_temp" (n)', "  only_temp\n(n)", 'U&"d\\0061t"', 'U&"p\\0064at"', 'U&"!0064at" UESCAPE \'!\'',
             "/* a comment */ only_temp", "/* c */ plain", "-- c\nonly_temp", "missing", "pg_temp.plain",
             "temp_view", "permanent_view", "temp_partitioned", "permanent_partitioned", "permanent_parent",
             "temp_child"]

# the tables above the simple ones: permanent, then this session's
PERMANENT_SQL = """
    CREATE TABLE IF NOT EXISTS public.permanent_partitioned (n int) PARTITION BY RANGE (n);
    CREATE TABLE IF NOT EXISTS public.permanent_partition PARTITION OF public.permanent_partitioned
        FOR VALUES FROM (0) TO (10);
    CREATE TABLE IF NOT EXISTS public.permanent_parent (n int);
    CREATE OR REPLACE FUNCTION public.insert_instead() RETURNS trigger LANGUAGE plpgsql AS
        $$BEGIN EXECUTE pg_catalog.format('INSERT INTO %s VALUES ($1)', TG_ARGV[0]) USING NEW.n; RETURN NEW; END$$;
    CREATE OR REPLACE VIEW public.permanent_view AS SELECT n FROM public.plain;
    CREATE OR REPLACE TRIGGER instead INSTEAD OF INSERT ON public.permanent_view
        FOR EACH ROW EXECUTE FUNCTION public.insert_instead('public.plain')"""
SESSION_SQL = """
    CREATE TEMPORARY VIEW temp_view AS SELECT n FROM pg_temp.only_temp;
    CREATE TRIGGER instead INSTEAD OF INSERT ON pg_temp.temp_view
        FOR EACH ROW EXECUTE FUNCTION public.insert_instead('pg_temp.only_temp');
    CREATE TEMPORARY TABLE temp_partitioned (n int) PARTITION BY RANGE (n);
    CREATE TEMPORARY TABLE temp_partition PARTITION OF pg_temp.temp_partitioned FOR VALUES FROM (0) TO (10);
    CREATE TEMPORARY TABLE temp_child () INHERITS (public.permanent_parent)"""

READ_ONLY = {"BEGIN READ ONLY": ["BEGIN READ ONLY"],
             "SET TRANSACTION READ ONLY after a statement": ["BEGIN", "SELECT 1", "SET TRANSACTION READ ONLY"],
             "default_transaction_read_only": ["SET default_transaction_read_only = on", "BEGIN"]}


@pytest.fixture(scope="module")
def permanent_tables(s3_database, cluster):
    with psycopg.connect(cluster.conninfo(s3_database), autocommit=True) as conn:
        for name, permanent, _ in TABLES:
            if permanent:
                conn.execute(f'CREATE TABLE IF NOT EXISTS public."{name}" (n int)')
        conn.execute(PERMANENT_SQL)
    return s3_database


@pytest.fixture
def session(permanent_tables, connect, emulator, s3):
    emulator.reset()
    conn = connect(dbname=permanent_tables)
    for name, _, temporary in TABLES:
        if temporary:
            conn.execute(f'CREATE TEMPORARY TABLE "{name}" (n int)')
    conn.execute(SESSION_SQL)
    return conn


def copy_error(conn, table_name):
    """(SQLSTATE, message) of COPY table_name FROM STDIN of a row, None if it writes it."""
    return copy_from_stdin_error(conn, f"COPY {table_name} FROM STDIN", b"1\n")


def import_outcome(conn, emulator, table_name, key):
    """(SQLSTATE, message) of an import of key into table_name, None if it
    imports (rolled back either way), and the S3 GETs it sent."""
    emulator.reset()
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT aws_s3.table_import_from_s3(%s, '', '', %s, %s, %s)",
                         (table_name, BUCKET, key, REGION))
        outcome = None
    except psycopg.Error as error:
        outcome = error.sqlstate, error.diag.message_primary
    return outcome, requests(emulator).get(("s3", "GET"), (0, 0))[0]


@pytest.mark.parametrize("read_only", READ_ONLY)
@pytest.mark.parametrize("table_name", SPELLINGS)
def test_an_import_in_a_read_only_transaction_writes_where_copy_from_stdin_does(session, emulator, s3, table_name,
                                                                                read_only):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    emulator.reset()
    for sql in READ_ONLY[read_only]:
        session.execute(sql)
    assert session.execute("SHOW transaction_read_only").fetchone() == ("on",)
    reference = copy_error(session, table_name)
    outcome, downloads = import_outcome(session, emulator, table_name, key)
    session.execute("ROLLBACK")
    if reference is None:
        assert (outcome, downloads) == (None, 1)
    elif reference[0] == "25006":  # by aws_s3 before the download, not by the COPY once it has begun
        assert (outcome[0], outcome[1].startswith("aws_s3: table_import_from_s3 cannot import"),
                downloads) == ("25006", True, 0)
    else:  # not a table COPY can write: COPY's error, before any download
        assert (outcome[0], downloads) == (reference[0], 0)


# Backfills against UPDATE of the same table (its hierarchy) in the same
# read-only transaction: where UPDATE writes, the backfill fills; where UPDATE
# is refused (25006), the backfill is refused before any request.
BACKFILL_SQL = """
    CREATE TABLE IF NOT EXISTS public.notes_parent (body text, sentiment varchar, confidence real);
    CREATE TABLE IF NOT EXISTS public.notes_partitioned (id int, body text, sentiment varchar, confidence real)
        PARTITION BY RANGE (id);
    CREATE TABLE IF NOT EXISTS public.notes_partition PARTITION OF public.notes_partitioned
        FOR VALUES FROM (0) TO (10)"""
BACKFILL_SESSION_SQL = """
    CREATE TEMPORARY TABLE notes_child () INHERITS (public.notes_parent);
    INSERT INTO pg_temp.notes_child (body) VALUES ('I love it'), ('I hate it');
    CREATE TEMPORARY TABLE temp_notes_partitioned (id int, body text, sentiment varchar, confidence real)
        PARTITION BY RANGE (id);
    CREATE TEMPORARY TABLE temp_notes_partition PARTITION OF pg_temp.temp_notes_partitioned
        FOR VALUES FROM (0) TO (10);
    INSERT INTO pg_temp.temp_notes_partitioned (id, body) VALUES (1, 'I love it'), (2, 'I hate it');
    CREATE TEMPORARY TABLE temp_notes_parent (body text, sentiment varchar, confidence real);
    CREATE TEMPORARY TABLE temp_notes_child () INHERITS (pg_temp.temp_notes_parent);
    INSERT INTO pg_temp.temp_notes_child (body) VALUES ('I love it')"""
BACKFILL_TABLES = ["public.notes_parent", "notes_child", "public.notes_partitioned", "temp_notes_partitioned",
                   "temp_notes_parent", "public.notes_partition", "temp_notes_partition"]


@pytest.mark.parametrize("table", BACKFILL_TABLES)
def test_a_backfill_in_a_read_only_transaction_fills_where_update_does(permanent_tables, connect, emulator, table):
    conn = connect(dbname=permanent_tables)
    conn.execute("CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE")
    conn.execute(BACKFILL_SQL)
    conn.execute(BACKFILL_SESSION_SQL)
    conn.execute("SET default_transaction_read_only = on")
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"UPDATE {table} SET sentiment = sentiment")
        reference = None
    except psycopg.Error as error:
        reference = error.sqlstate
    emulator.reset()
    try:
        conn.execute("CALL aws_comprehend.materialize_sentiment(%s, 'body', 'en')", (table,))
        outcome = None
    except psycopg.Error as error:
        outcome = error.sqlstate
    sent = sum(count for count, _ in requests(emulator).values())
    left = conn.execute(f"SELECT count(*) FROM {table} WHERE sentiment IS NULL").fetchone()[0]
    assert (reference is None) == (not table.startswith("public."))  # this session's tables only
    if reference is None:
        assert (outcome, left) == (None, 0)
    else:
        assert (reference, outcome, sent) == ("25006", "25006", 0)


# A role's and a database's default_transaction_read_only (ALTER ROLE/DATABASE
# ... SET), and neither, against COPY FROM STDIN in the same session, as a
# role that lacks privileges: where COPY fails before it reads any data (a
# table, schema or column not found, a privilege, row security), the import
# fails with COPY's error, in a read-write transaction too; where COPY is
# refused as read-only, the import is refused by aws_s3; in both cases before
# any request. Exports work.
DEFAULTS_SQL = """
    CREATE SCHEMA hidden;
    CREATE TABLE hidden.h (n int);
    CREATE TABLE public.writable (n int, m int);
    CREATE TABLE public.selectable (n int);
    CREATE TABLE public.row_secured (n int);
    ALTER TABLE public.row_secured ENABLE ROW LEVEL SECURITY;
    CREATE TABLE public.column_granted (n int, m int)"""
GRANTS_SQL = """
    GRANT aws_s3 TO {role};
    GRANT ALL ON public.writable, public.row_secured TO {role};
    GRANT SELECT ON public.selectable TO {role};
    GRANT INSERT (n) ON public.column_granted TO {role}"""
DEFAULT_TARGETS = ["writable", "writable (m)", "writable (nope)", "missing", "nowhere.writable", "hidden.h",
                   "selectable", "row_secured", "column_granted", "column_granted (n)", "column_granted (m)",
                   "pg_catalog.pg_class", "own_temp"]


@pytest.fixture(scope="module")
def defaults_database(cluster, s3):
    name = create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE")
    role = f"reader_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(DEFAULTS_SQL)
        conn.execute(GRANTS_SQL.format(role=role))
    yield name, role
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("default", ["ALTER ROLE", "ALTER DATABASE", None])
def test_imports_are_refused_as_copy_from_would_and_before_any_request(defaults_database, cluster, emulator, s3,
                                                                       default):
    database, role = defaults_database
    alter = {"ALTER ROLE": f"ALTER ROLE {role}", "ALTER DATABASE": f'ALTER DATABASE "{database}"', None: None}[default]
    if alter:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:  # not the database made read-only
            conn.execute(f"{alter} SET default_transaction_read_only = on")
    try:
        key = new_key()
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
        with psycopg.connect(cluster.conninfo(database, role), autocommit=True) as conn:
            assert conn.execute("SHOW transaction_read_only").fetchone() == ("on" if alter else "off",)
            for sql in ("BEGIN READ WRITE", "CREATE TEMPORARY TABLE own_temp (n int)", "COMMIT"):
                conn.execute(sql)
            outcomes = {}
            for table_name in DEFAULT_TARGETS:
                reference = copy_error(conn, table_name)
                outcome, downloads = import_outcome(conn, emulator, table_name, key)
                if reference is None:
                    assert (outcome, downloads) == (None, 1), table_name
                elif reference[0] == "25006":
                    assert (outcome[0], outcome[1].startswith("aws_s3: table_import_from_s3 cannot import"),
                            downloads) == ("25006", True, 0), table_name
                elif reference[0] == "22P04":  # the data's, once read
                    assert (outcome, downloads) == (reference, 1), table_name
                else:
                    assert (outcome, downloads) == (reference, 0), table_name
                outcomes[table_name] = reference and reference[0]
            writable = "25006" if alter else None
            assert outcomes == {"writable": "25006" if alter else "22P04", "writable (m)": writable,
                                "writable (nope)": "42703",
                                "missing": "42P01", "nowhere.writable": "3F000", "hidden.h": "42501",
                                "selectable": "42501", "row_secured": "0A000", "column_granted": "42501",
                                "column_granted (n)": writable, "column_granted (m)": "42501",
                                "pg_catalog.pg_class": "42501", "own_temp": None}
            assert conn.execute("SELECT rows_uploaded, files_uploaded FROM aws_s3.query_export_to_s3("
                                "'SELECT n FROM public.selectable UNION ALL SELECT 1', %s, %s, %s)",
                                (BUCKET, new_key(), REGION)).fetchone() == (1, 1)
    finally:
        if alter:
            with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
                conn.execute(f"{alter} RESET default_transaction_read_only")


# The same outside UTF8, with names outside ASCII: COPY's errors and aws_s3's
# refusal read in the database's encoding, the table found as COPY finds it.
NAMES = {"LATIN1": ("sch\u00e9ma", "t\u00e9st", "c\u00f6l"), "EUC_JP": ("\u30b9\u30ad\u30fc\u30de", "\u8868", "\u5217"),
         "SQL_ASCII": ("sch\u00e9ma", "t\u00e9st", "c\u00f6l")}


@pytest.mark.parametrize("encoding", NAMES)
def test_outside_utf8_a_read_only_import_fails_as_copy_from_with_names_outside_ascii(cluster, emulator, s3,
                                                                                     encoding):
    schema, table, column = NAMES[encoding]
    database = create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE", options=in_encoding(encoding))
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
        conn.execute("SET client_encoding = UTF8")  # SQL_ASCII's default would be SQL_ASCII
        conn.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}"."{table}" ("{column}" int);'
                     f'CREATE TEMPORARY TABLE "{table}" ("{column}" int)')
        conn.execute("SET default_transaction_read_only = on")
        spellings = {f'"{schema}"."{table}"': "25006", f'"{table}"': None, f'"{schema}"."{table}x"': "42P01",
                     f'"{schema}x"."{table}"': "3F000", f'"{schema}"."{table}" ("{column}")': "25006",
                     f'"{schema}"."{table}" ("{column}x")': "42703", f'"{table}" ("{column}x")': "42703"}
        for table_name, sqlstate in spellings.items():
            reference = copy_error(conn, table_name)
            assert (reference and reference[0]) == sqlstate, table_name
            outcome, downloads = import_outcome(conn, emulator, table_name, key)
            if sqlstate is None:
                assert (outcome, downloads) == (None, 1), table_name
            elif sqlstate == "25006":
                assert (outcome, downloads) == (("25006", f"aws_s3: table_import_from_s3 cannot import "
                                                 f"s3://{BUCKET}/{key} into {table_name} in a read-only "
                                                 "transaction"), 0), table_name
            else:
                assert (outcome, downloads) == (reference, 0), table_name


# A SECURITY DEFINER function (SET search_path) that imports, against one
# that runs COPY FROM a file into the same table_name: the table is found and
# checked as its owner, in its search path, where pg_temp, the caller's, comes
# first; read-only as COPY; exports read what the owner may read.
DEFINER_SQL = """
    CREATE SCHEMA owned;
    CREATE TABLE owned.t (n int);
    CREATE TABLE owned.secret (n int);
    INSERT INTO owned.secret VALUES (7);
    CREATE FUNCTION owned.import_rows(key text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = owned AS $$
    BEGIN
        RETURN aws_s3.table_import_from_s3('t', '', '', aws_commons.create_s3_uri('""" + BUCKET + """', key,
                                           '""" + REGION + """'));
    END$$;
    CREATE FUNCTION owned.copy_rows() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = owned AS $$
    BEGIN
        COPY t FROM '/dev/null';
    END$$;
    CREATE FUNCTION owned.export_secret(key text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = owned AS $$
    BEGIN
        RETURN (aws_s3.query_export_to_s3('SELECT n FROM secret', aws_commons.create_s3_uri('""" + BUCKET + """',
                                          key, '""" + REGION + """'))).rows_uploaded;
    END$$"""


@pytest.fixture(scope="module")
def definer_database(cluster, s3):
    name = create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE")
    owner, caller = (f"{kind}_{uuid.uuid4().hex[:10]}" for kind in ("owner", "caller"))
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN IN ROLE aws_s3, pg_read_server_files; CREATE ROLE {caller} LOGIN")
        conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO {owner}')
    with psycopg.connect(cluster.conninfo(name, owner), autocommit=True) as conn:
        conn.execute(DEFINER_SQL)
        conn.execute(f"GRANT USAGE ON SCHEMA owned TO {caller}")
    yield name, caller
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        for role in (owner, caller):
            conn.execute(f"DROP OWNED BY {role} CASCADE")
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("shadowed", [False, True])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_security_definer_import_finds_and_checks_its_table_as_copy_in_it(definer_database, cluster, emulator, s3,
                                                                           read_only, shadowed):
    database, caller = definer_database
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n")
    with psycopg.connect(cluster.conninfo(database, caller), autocommit=True) as conn:
        if shadowed:
            conn.execute("CREATE TEMPORARY TABLE t (n int)")
        if read_only:
            conn.execute("SET default_transaction_read_only = on")

        def outcome(sql, params=()):
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(sql, params)
            except psycopg.Error as error:
                return error.sqlstate
            return None
        reference = outcome("SELECT owned.copy_rows()")
        assert reference == ("42501" if shadowed else "25006" if read_only else None)
        emulator.reset()
        assert outcome("SELECT owned.import_rows(%s)", (key,)) == reference
        assert requests(emulator).get(("s3", "GET"), (0, 0))[0] == (0 if reference else 1)
        assert conn.execute("SELECT owned.export_secret(%s)", (new_key(),)).fetchone() == (1,)
        assert outcome("SELECT * FROM owned.secret") == "42501"
