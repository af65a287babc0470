"""Aurora's SET apg_enable_function_migration = false: the same switch as
aws_ml.batch_mode (batch mode is on while both are on), wherever PostgreSQL
lets the aws_ml module define a name without a dot, and nowhere else
(docs/batch-mode.md, "The switch")."""
import subprocess

import psycopg
import pytest

from tests.conftest import counter, new_cluster

# 30 documents: in batch mode two BatchDetectSentiment requests, row by row 30 DetectSentiment
QUERY = ("SELECT count((aws_comprehend.detect_sentiment('I like item ' || n, 'en')).sentiment) "
         "FROM generate_series(1, 30) n")
BATCHED, ROW_BY_ROW = (2, 0), (0, 30)
UNRECOGNIZED = 'unrecognized configuration parameter "apg_enable_function_migration"'
MODULE = "$libdir/plugins/aws_ml"


def requests_of(conn, emulator):
    """(BatchDetectSentiment, DetectSentiment) requests of QUERY."""
    emulator.reset()
    assert conn.execute(QUERY).fetchone() == (30,)
    counters = emulator.counters()
    return counter(counters, "comprehend", "BatchDetectSentiment"), counter(counters, "comprehend", "DetectSentiment")


def test_once_the_module_is_loaded_it_switches_batch_mode(connect, emulator):
    conn = connect()
    with pytest.raises(psycopg.errors.UndefinedObject, match=UNRECOGNIZED):
        conn.execute("SET apg_enable_function_migration = false")
    conn.execute(f"LOAD '{MODULE}'")
    conn.execute("SET apg_enable_function_migration = false")
    assert requests_of(conn, emulator) == ROW_BY_ROW
    # each keeps its own value; batch mode is on while both are on
    assert conn.execute("SHOW aws_ml.batch_mode").fetchone() == ("on",)
    conn.execute("SET aws_ml.batch_mode = off")
    conn.execute("SET apg_enable_function_migration = true")
    assert requests_of(conn, emulator) == ROW_BY_ROW
    conn.execute("RESET aws_ml.batch_mode")
    assert requests_of(conn, emulator) == BATCHED
    # undone with its transaction, and by a function's SET clause on return
    conn.execute("BEGIN")
    conn.execute("SET LOCAL apg_enable_function_migration = off")
    assert requests_of(conn, emulator) == ROW_BY_ROW
    conn.execute("ROLLBACK")
    assert requests_of(conn, emulator) == BATCHED
    conn.execute(f"CREATE OR REPLACE FUNCTION row_by_row_count() RETURNS bigint LANGUAGE sql "
                 f"SET apg_enable_function_migration = off AS $$ {QUERY} $$")
    emulator.reset()
    assert conn.execute("SELECT row_by_row_count()").fetchone() == (30,)
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 30
    assert requests_of(conn, emulator) == BATCHED


def test_any_user_may_load_the_module_and_set_it(connect, login_role, emulator):
    conn = connect(login_role())
    conn.execute(f"LOAD '{MODULE}'")
    conn.execute("SET apg_enable_function_migration = off")
    assert conn.execute("SHOW apg_enable_function_migration").fetchone() == ("off",)


def test_a_session_preload_takes_set_but_not_connection_options_nor_role_settings(cluster, database, connect,
                                                                                  login_role, emulator):
    role = login_role()
    admin = connect()
    admin.execute(f"ALTER ROLE {role} SET session_preload_libraries = '{MODULE}'")
    conn = connect(role)
    conn.execute("SET apg_enable_function_migration = off")
    assert conn.execute("SHOW apg_enable_function_migration").fetchone() == ("off",)
    with pytest.raises(psycopg.OperationalError, match=UNRECOGNIZED):
        psycopg.connect(cluster.conninfo(database, role), options="-c apg_enable_function_migration=off")
    # the role's own setting, which a session must have the module to make, comes before its
    # session_preload_libraries: discarded with a WARNING
    with pytest.raises(psycopg.errors.UndefinedObject, match=UNRECOGNIZED):
        admin.execute(f"ALTER ROLE {role} SET apg_enable_function_migration = off")
    admin.execute(f"LOAD '{MODULE}'")
    admin.execute(f"ALTER ROLE {role} SET apg_enable_function_migration = off")
    with psycopg.connect(cluster.conninfo(database, role), autocommit=True) as late:
        assert late.execute("SHOW apg_enable_function_migration").fetchone() == ("on",)
    login = subprocess.run([str(cluster.bindir / "psql"), "-X", "-d", cluster.conninfo(database, role), "-c",
                            "SELECT 1"], capture_output=True, text=True)
    assert f"WARNING:  {UNRECOGNIZED}" in login.stderr


@pytest.fixture(scope="module")
def preloaded(emulator):
    server = new_cluster(emulator, shared_preload_libraries=MODULE).start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
    yield server
    server.stop()


@pytest.mark.slow  # a cluster of its own
def test_a_shared_preload_takes_it_everywhere_but_the_configuration_files(preloaded, emulator):
    with psycopg.connect(preloaded.conninfo(), autocommit=True,
                         options="-c apg_enable_function_migration=off") as conn:
        assert requests_of(conn, emulator) == ROW_BY_ROW
        conn.execute("CREATE ROLE migrating LOGIN SUPERUSER")
        conn.execute("ALTER ROLE migrating SET apg_enable_function_migration = off")
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            conn.execute("ALTER SYSTEM SET apg_enable_function_migration = off")
    with psycopg.connect(preloaded.conninfo(user="migrating"), autocommit=True) as conn:
        assert requests_of(conn, emulator) == ROW_BY_ROW
    with psycopg.connect(preloaded.conninfo(), autocommit=True) as conn:
        assert requests_of(conn, emulator) == BATCHED
    # postgresql.conf is read before the module is loaded: the server does not start
    conf = preloaded.data / "postgresql.conf"
    settings = conf.read_text()
    conf.write_text(settings + "apg_enable_function_migration = off\n")
    with pytest.raises(subprocess.CalledProcessError):
        preloaded.restart()
    assert f"{UNRECOGNIZED} in file" in preloaded.server_log()
    conf.write_text(settings)
    preloaded.restart()
