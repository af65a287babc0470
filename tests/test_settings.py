"""The settings that decide where the server's credentials go can only be set
by a superuser or the server configuration, whatever way a user tries."""
import psycopg
import pytest


LOCKED = ["aws_ml.region", "aws_ml.endpoint_url", "aws_ml.comprehend_endpoint_url", "aws_ml.sagemaker_endpoint_url",
          "aws_ml.bedrock_endpoint_url", "aws_ml.sts_endpoint_url", "aws_ml.comprehend_role_arn",
          "aws_ml.sagemaker_role_arn", "aws_ml.bedrock_role_arn"]
# Nothing listens there: a request honouring it would fail.
ELSEWHERE = "http://127.0.0.1:9"
CALL = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"


@pytest.fixture
def member(db, login_role):
    user = login_role()
    db.execute(f"GRANT aws_ml TO {user}")
    return user


@pytest.mark.parametrize("name", LOCKED)
def test_set_after_first_call_is_refused_42501(connect, member, name):
    conn = connect(member)
    conn.execute(CALL)
    for sql in (f"SET {name} = 'x'", f"SELECT set_config('{name}', 'x', false)"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)


@pytest.mark.parametrize("name", LOCKED)
@pytest.mark.parametrize("how", ["SET", "set_config", "options"])
def test_value_set_before_the_module_loads_is_refused_before_any_request(connect, member, emulator, how, name):
    emulator.reset()
    if how == "options":
        conn = connect(member, options=f"-c {name}={ELSEWHERE}")
    else:
        conn = connect(member)
        conn.execute(f"SET {name} = '{ELSEWHERE}'" if how == "SET"
                     else f"SELECT set_config('{name}', '{ELSEWHERE}', false)")
    warnings = []
    conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(CALL)
    assert name in caught.value.diag.message_primary
    assert caught.value.diag.message_hint
    assert any("permission denied to set parameter" in w for w in warnings)
    assert conn.execute(f"SHOW {name}").fetchone()[0] != ELSEWHERE
    assert emulator.counters() == {}


@pytest.mark.parametrize("name", LOCKED)
@pytest.mark.parametrize("target", ["ROLE", "DATABASE"])
def test_alter_role_or_database_set_is_refused(connect, member, database, db, target, name):
    if target == "DATABASE":
        db.execute(f'ALTER DATABASE "{database}" OWNER TO {member}')
    conn = connect(member)
    try:
        for loaded in (False, True):
            if loaded:
                conn.execute(CALL)
            what = f"ROLE {member}" if target == "ROLE" else f'DATABASE "{database}"'
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"ALTER {what} SET {name} = '{ELSEWHERE}'")
    finally:
        db.execute(f'ALTER DATABASE "{database}" OWNER TO postgres')


def test_superuser_may_set_them_and_users_may_set_timeouts(connect, member, db):
    db.execute(f"SET aws_ml.comprehend_endpoint_url = '{ELSEWHERE}'")
    with pytest.raises(psycopg.Error) as caught:
        db.execute(CALL)
    assert caught.value.diag.sqlstate == "58030"
    conn = connect(member)
    conn.execute("SET aws_ml.request_timeout_ms = 2000")
    conn.execute("SET aws_ml.max_attempts = 2")
    assert conn.execute(CALL).fetchone() == ("POSITIVE",)


def test_settings_defaults(db):
    db.execute(CALL)
    values = dict(db.execute(
        "SELECT name, setting FROM pg_settings WHERE name LIKE 'aws\\_ml.%'").fetchall())
    assert values["aws_ml.connect_timeout_ms"] == "5000"
    assert values["aws_ml.request_timeout_ms"] == "60000"
    assert values["aws_ml.max_attempts"] == "5"
    contexts = dict(db.execute(
        "SELECT name, context FROM pg_settings WHERE name LIKE 'aws\\_ml.%'").fetchall())
    assert {contexts[name] for name in LOCKED} == {"superuser"}
