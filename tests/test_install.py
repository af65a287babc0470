"""Installing, dropping and re-installing the extensions."""
import psycopg
import pytest

from tests.conftest import new_cluster


def notices_of(conn):
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    return notices


def test_create_extension_cascade_installs_aws_commons_with_notice(cluster, fresh_database):
    name = fresh_database()
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        notices = notices_of(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;")
        assert 'installing required extension "aws_commons"' in notices
        versions = dict(conn.execute("SELECT extname, extversion FROM pg_extension").fetchall())
        assert versions["aws_ml"] == "2.2" and versions["aws_commons"] == "1.1"
        assert versions["plpython3u"] == "1.0"


def test_drop_removes_everything_but_the_role_and_create_again_works(cluster, fresh_database):
    name = fresh_database()
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
        conn.execute("DROP EXTENSION aws_ml CASCADE")
        schemas = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aws\\_%'").fetchall()
        assert schemas == [("aws_commons",)]
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE '%sentiment%'").fetchone()[0] == 0
        assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'aws_ml'").fetchone() == (False,)
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
        assert conn.execute("SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"
                            ).fetchone() == ("POSITIVE",)


def test_aws_commons_types_and_constructors(db):
    assert db.execute("SELECT (aws_commons.create_s3_uri('bucket', 'dir/file.csv', 'us-east-1')).*").fetchone() \
        == ("bucket", "dir/file.csv", "us-east-1")
    assert db.execute("SELECT (aws_commons.create_aws_credentials('AKIA', 'secret', 'token')).*").fetchone() \
        == ("AKIA", "secret", "token")
    assert db.execute("SELECT (aws_commons.create_aws_credentials('AKIA', 'secret')).*").fetchone() \
        == ("AKIA", "secret", None)
    assert db.execute("SELECT (aws_commons.create_lambda_function_arn('fn')).*").fetchone() == ("fn", None)
    assert db.execute("SELECT (aws_commons.create_lambda_function_arn('fn', 'eu-west-1')).region").fetchone() \
        == ("eu-west-1",)
    assert db.execute("SELECT pg_typeof(aws_commons.create_s3_uri('b', 'f', 'r'))::text").fetchone() \
        == ("aws_commons._s3_uri_1",)


def test_aws_commons_1_0_updates_to_an_optional_session_token(cluster, fresh_database):
    with psycopg.connect(cluster.conninfo(fresh_database()), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_commons VERSION '1.0'")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT aws_commons.create_aws_credentials('AKIA', 'secret')")
        conn.execute("ALTER EXTENSION aws_commons UPDATE")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'aws_commons'").fetchone() == ("1.1",)
        assert conn.execute("SELECT (aws_commons.create_aws_credentials('AKIA', 'secret')).*").fetchone() \
            == ("AKIA", "secret", None)


def test_role_made_elsewhere_in_the_cluster_is_reused(cluster, fresh_database):
    first, second = fresh_database(), fresh_database()
    for name in (first, second):
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
    with psycopg.connect(cluster.conninfo(second), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'aws_ml'").fetchone() == (1,)


def test_a_role_named_aws_ml_that_can_log_in_is_not_adopted(emulator):
    """A CREATEROLE user who makes a login role aws_ml before the first
    CREATE EXTENSION of the cluster would receive every grant: refused, and
    nothing is created; once the role is NOLOGIN it is adopted."""
    server = new_cluster(emulator).start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as admin:
            admin.execute("CREATE ROLE role_maker LOGIN CREATEROLE")
            with psycopg.connect(server.conninfo(user="role_maker"), autocommit=True) as maker:
                maker.execute("CREATE ROLE aws_ml LOGIN PASSWORD 'mine now'")
            with pytest.raises(psycopg.errors.DuplicateObject) as caught:
                admin.execute("CREATE EXTENSION aws_ml CASCADE")
            assert "can log in" in caught.value.diag.message_primary
            assert "NOLOGIN" in caught.value.diag.message_hint
            assert admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'aws\\_%'").fetchone() == (0,)
            admin.execute("ALTER ROLE aws_ml NOLOGIN")
            admin.execute("CREATE EXTENSION aws_ml CASCADE")
            assert admin.execute("SELECT has_function_privilege('aws_ml', "
                                 "'aws_comprehend.detect_sentiment(varchar, varchar, int)', 'EXECUTE')").fetchone() \
                == (True,)
    finally:
        server.stop()
