"""The settings that decide where the server's credentials go can only be set
by a superuser or the server configuration, whatever way a user tries."""
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ACCESS_KEY_ID


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


SUPERUSER_ONLY = ("SELECT name, vartype FROM pg_settings WHERE context = 'superuser' "
                  "AND (name LIKE 'aws\\_ml.%' OR name LIKE 'aws\\_s3.%') ORDER BY name")


@pytest.fixture
def superuser_only(db):
    """Every aws_ml.* and aws_s3.* setting marked superuser-only, with a value
    of its type (the time limits' 5 ms is the attack on the administrator's
    limit)."""
    db.execute(CALL)  # the module defines them
    settings = {name: ELSEWHERE if vartype == "string" else "5" for name, vartype in db.execute(SUPERUSER_ONLY)}
    assert set(LOCKED) | {f"aws_ml.{service}_request_timeout_ms" for service in ("comprehend", "sagemaker", "bedrock")} \
        <= set(settings)
    return settings


@pytest.mark.slow  # a session for each way
@pytest.mark.parametrize("how", ["SET", "set_config", "options"])
@pytest.mark.parametrize("empty", [False, True])
def test_value_set_before_the_module_loads_is_refused_before_any_request(connect, member, emulator, superuser_only,
                                                                         how, empty):
    """Every superuser-only setting, through one mechanism. An empty value
    too: it would replace the server configuration's."""
    for name, value in superuser_only.items():
        value = "" if empty else value
        emulator.reset()
        if how == "options":
            conn = connect(member, options=f"-c {name}={value}")
        else:
            conn = connect(member)
            conn.execute(f"SET {name} = '{value}'" if how == "SET"
                         else f"SELECT set_config('{name}', '{value}', false)")
        warnings = []
        conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            conn.execute(CALL)
        assert name in caught.value.diag.message_primary, name
        assert caught.value.diag.message_hint
        assert any("permission denied to set parameter" in w for w in warnings), name
        if value:
            assert conn.execute(f"SHOW {name}").fetchone()[0] != value
        assert emulator.counters() == {}, name
        conn.close()


def test_a_connection_cannot_shorten_the_administrators_time_limit(cluster, emulator, member, connect):
    """The administrator's aws_ml.bedrock_request_timeout_ms in the server
    configuration; a tenant's "-c" of its own is refused before any request,
    not honoured and not replaced by the built-in limit."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as admin:
        admin.execute("LOAD '$libdir/plugins/aws_ml'")  # ALTER SYSTEM knows only defined settings
        admin.execute("ALTER SYSTEM SET aws_ml.bedrock_request_timeout_ms = 1000")
        admin.execute("SELECT pg_reload_conf()")
    try:
        emulator.reset()
        conn = connect(member, options="-c aws_ml.bedrock_request_timeout_ms=5")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            conn.execute(CALL)
        assert "aws_ml.bedrock_request_timeout_ms" in caught.value.diag.message_primary
        assert emulator.counters() == {}
        assert connect(member).execute("SHOW aws_ml.bedrock_request_timeout_ms").fetchone() == ("1000",)
    finally:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET aws_ml.bedrock_request_timeout_ms")
            admin.execute("SELECT pg_reload_conf()")


ROLE_ARN = "arn:aws:iam::111122223333:role/tenant-comprehend"


@pytest.mark.parametrize("name", ["aws_ml.comprehend_role_arn", "aws_ml.endpoint_url"])
def test_an_empty_connection_option_cannot_drop_what_the_administrator_set(connect, member, db, emulator, name):
    """The administrator gives the tenant a role (ALTER ROLE, as a superuser);
    an empty "-c" option would leave the session with the base key or the
    public AWS endpoint. The call is refused before any request, also through
    a superuser's SECURITY DEFINER function, and nothing is signed."""
    db.execute(f"ALTER ROLE {member} SET aws_ml.comprehend_role_arn = '{ROLE_ARN}'")
    db.execute("CREATE OR REPLACE FUNCTION public.definer_sentiment() RETURNS varchar LANGUAGE sql "
               "SECURITY DEFINER AS $$ SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en') $$")
    db.execute(f"GRANT EXECUTE ON FUNCTION public.definer_sentiment() TO {member}")
    try:
        for sql in (CALL, "SELECT public.definer_sentiment()"):
            emulator.reset()
            conn = connect(member, options=f"-c {name}=")
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute(sql)
            assert name in caught.value.diag.message_primary
            assert emulator.counters() == {}
        # without the option the administrator's role is assumed
        emulator.reset()
        assert connect(member).execute(CALL).fetchone() == ("POSITIVE",)
        counters = emulator.counters()
        assert counters["sts"]["AssumeRole"]["requests"] == 1
        assert set(counters["comprehend"]["DetectSentiment"]["access_key_ids"]) != {ACCESS_KEY_ID}
    finally:
        db.execute(f"ALTER ROLE {member} RESET aws_ml.comprehend_role_arn")
        db.execute("DROP FUNCTION public.definer_sentiment()")


@pytest.mark.parametrize("clause", ["aws_ml.comprehend_role_arn", "aws_ml.endpoint_url"])
def test_a_superuser_functions_set_clause_does_not_hide_a_refused_value(connect, member, db, emulator, clause):
    """The module loads first inside a superuser's SECURITY DEFINER function
    whose SET clause sets the setting the tenant had emptied with "-c": the
    tenant's value, saved under the clause, comes back when the function
    returns. The session is refused inside the function and after it."""
    name = "aws_ml.comprehend_role_arn"
    value = ROLE_ARN if clause == name else f"{emulator.url}"
    db.execute(f"ALTER ROLE {member} SET {name} = '{ROLE_ARN}'")
    db.execute("CREATE OR REPLACE FUNCTION public.definer_sentiment() RETURNS varchar LANGUAGE sql "
               f"SECURITY DEFINER SET {clause} = '{value}' "
               "AS $$ SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en') $$")
    db.execute(f"GRANT EXECUTE ON FUNCTION public.definer_sentiment() TO {member}")
    try:
        emulator.reset()
        conn = connect(member, options=f"-c {name}=")
        for sql in ("SELECT public.definer_sentiment()", CALL):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute(sql)
            assert name in caught.value.diag.message_primary
        assert emulator.counters() == {}
    finally:
        db.execute(f"ALTER ROLE {member} RESET {name}")
        db.execute("DROP FUNCTION public.definer_sentiment()")


def test_parallel_workers_refuse_what_the_leader_refuses(connect, member, emulator):
    """The refusal reaches the workers with the leader's other settings."""
    query = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"
    for options, refused in ((f"-c aws_ml.comprehend_role_arn={ROLE_ARN}", True), ("", False)):
        conn = connect(member, options=options)
        for setting in ("force_parallel_mode = on", "parallel_setup_cost = 0", "parallel_tuple_cost = 0"):
            conn.execute(f"SET {setting}")
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN (COSTS OFF) {query}"))
        assert "Gather" in plan, plan
        emulator.reset()
        if refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
            assert emulator.counters() == {}
        else:
            assert conn.execute(query).fetchone() == ("POSITIVE",)
            pids = emulator.counters()["comprehend"]["DetectSentiment"]["pids"]
            assert str(conn.info.backend_pid) not in pids  # a worker sent it


@pytest.mark.slow  # new sessions as each role
@pytest.mark.parametrize("target", ["ROLE", "DATABASE"])
def test_alter_role_or_database_set_is_refused(connect, member, database, db, superuser_only, target):
    if target == "DATABASE":
        db.execute(f'ALTER DATABASE "{database}" OWNER TO {member}')
    try:
        for name, value in superuser_only.items():
            conn = connect(member)
            for loaded in (False, True):
                if loaded:
                    conn.execute(CALL)
                what = f"ROLE {member}" if target == "ROLE" else f'DATABASE "{database}"'
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"ALTER {what} SET {name} = '{value}'")
            conn.close()
    finally:
        db.execute(f'ALTER DATABASE "{database}" OWNER TO postgres')


@pytest.mark.parametrize("service", ["comprehend", "sagemaker", "bedrock"])
def test_only_a_superuser_sets_a_services_time_limit(connect, member, service):
    conn = connect(member)
    conn.execute(CALL)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SET aws_ml.{service}_request_timeout_ms = 3600000")


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


def test_python_refuses_a_module_whose_load_did_not_finish(db, emulator):
    """_PG_init sets the module's ready flag last; a load that failed half-way
    (as in a parallel worker, where it errors) leaves the library and its
    symbols in place but the aws_ml.* settings undefined, so that any user's
    placeholder could pass for them. Such a load aborts its statement, so it
    cannot be reached from SQL: here the flag's accessor reads false in a
    real backend, and the call is refused (55000) before any request."""
    db.execute("LOAD '$libdir/plugins/aws_ml'")  # which makes the package importable
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute("""DO $$
import ctypes
from aws_ml import backend, comprehend
begin_call = backend._accessors().aws_ml_begin_call

def begin_call_unready(state, guard_errors):
    guard = begin_call(state, guard_errors)
    ctypes.cast(state, ctypes.POINTER(backend._CallState)).contents.ready = False
    return guard
backend._module.aws_ml_begin_call = begin_call_unready
try:
    comprehend.detect_sentiment("I love it", "en", None)
finally:
    backend._module.aws_ml_begin_call = begin_call
$$ LANGUAGE plpython3u""")
    assert "did not finish loading" in caught.value.diag.message_primary
    assert emulator.counters() == {}


@pytest.mark.parametrize("setting, value, message", [
    ("aws_ml.region", "eu-w\u00e9st-1", "aws_ml: the AWS Region 'eu-w\u00e9st-1' (aws_ml.region or AWS_REGION) is not "
                                         "the name of an AWS Region"),
    ("aws_ml.endpoint_url", "localhost:4566", "aws_ml: aws_ml.endpoint_url 'localhost:4566' is not an http or https "
                                              "URL"),
    ("aws_ml.comprehend_endpoint_url", "http://h\u00f6st", "aws_ml: aws_ml.comprehend_endpoint_url 'http://h\u00f6st' "
                                                           "is not an http or https URL"),
])
def test_a_malformed_region_or_endpoint_is_a_configuration_error(db, emulator, setting, value, message):
    """botocore raised its own errors for these (38000, its text untranslated)."""
    db.execute("SELECT set_config(%s, %s, false)", (setting, value))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute("SELECT aws_comprehend.detect_sentiment('I love it', 'en')")
    assert caught.value.diag.message_primary == message
    assert emulator.counters() == {}


def test_each_call_reads_the_settings_as_they_are_then(db, emulator):
    """The package keeps the settings it read until one of them changes
    (extension/src/settings.c's assign hooks): a SET, a ROLLBACK that undoes
    a SET LOCAL, a RESET and a function's SET clause each take effect on the
    very next call of the session."""
    db.execute("SET aws_ml.max_attempts = 1")
    assert db.execute(CALL).fetchone() == ("POSITIVE",)
    db.execute(f"SET aws_ml.comprehend_endpoint_url = '{ELSEWHERE}'")
    with pytest.raises(psycopg.errors.IoError):  # 58030: nothing listens there
        db.execute(CALL)
    db.execute("RESET aws_ml.comprehend_endpoint_url")
    assert db.execute(CALL).fetchone() == ("POSITIVE",)
    db.execute("BEGIN")
    db.execute(f"SET LOCAL aws_ml.comprehend_endpoint_url = '{ELSEWHERE}'")
    with pytest.raises(psycopg.errors.IoError):
        db.execute(CALL)
    db.execute("ROLLBACK")
    assert db.execute(CALL).fetchone() == ("POSITIVE",)
    db.execute("CREATE FUNCTION pg_temp.elsewhere() RETURNS text LANGUAGE sql "
               f"SET aws_ml.comprehend_endpoint_url = '{ELSEWHERE}' "
               "BEGIN ATOMIC SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en'); END")
    with pytest.raises(psycopg.errors.IoError):
        db.execute("SELECT pg_temp.elsewhere()")
    assert db.execute(CALL).fetchone() == ("POSITIVE",)
    assert emulator.counters()["comprehend"]["DetectSentiment"]["requests"] == 4


def _documented_settings():
    """docs/configuration.md's table: {setting: (default, who can set it)}."""
    rows = {}
    for line in (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def _shown(value, unit):
    """A setting's value as PostgreSQL shows one with a unit of kB (6GB)."""
    if unit != "kB":
        return value
    kilobytes = int(value)
    for name, size in (("TB", 1024 ** 3), ("GB", 1024 ** 2), ("MB", 1024)):
        if kilobytes % size == 0:
            return f"{kilobytes // size}{name}"
    return f"{kilobytes}kB"


def test_the_documented_settings_are_the_modules(db):
    """docs/configuration.md lists every setting the module defines (settings.c,
    the one place they are written), with its default, its range and who may
    set it, as pg_settings reports them."""
    db.execute("LOAD '$libdir/plugins/aws_ml'")
    defined = db.execute(
        "SELECT name, boot_val, min_val, max_val, unit, context FROM pg_catalog.pg_settings "
        "WHERE name LIKE 'aws\\_ml.%' OR name LIKE 'aws\\_s3.%' OR name = 'apg_enable_function_migration'"
    ).fetchall()
    documented = _documented_settings()
    assert sorted(documented) == sorted(name for name, *_ in defined)
    for name, default, low, high, unit, context in defined:
        default_text, who = documented[name]
        assert default_text.startswith("empty" if default == "" else _shown(default, unit)), name
        if " to " in default_text:
            assert f"({_shown(low, unit)} to {_shown(high, unit)})" in default_text, name
        assert who.startswith({"superuser": "superuser", "user": "any user"}[context]), name


@pytest.mark.parametrize("call", [
    "SELECT * FROM aws_comprehend.batch_detect_sentiment(ARRAY['I love it'], 'en')",
    "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('linear-regression', NULL, ARRAY['1,2'])",
    "SELECT * FROM aws_bedrock.batch_invoke_model('amazon.titan-embed-text-v1', 'application/json', NULL, "
    "ARRAY['{\"inputText\": \"I love it\"}'])",
])
def test_a_batch_without_a_region_is_a_configuration_error_with_the_statement_cache_off(db, emulator, call):
    """With the statement cache on, a batch's first lookup finds that no region
    is configured; with it off, the client does, inside the batch's sending,
    where an error naming no input was taken for one (a Python TypeError)."""
    db.execute("SET aws_ml.statement_cache = off")
    db.execute("SET aws_ml.region = ''")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
        db.execute(call)
    assert caught.value.diag.message_primary.startswith("aws_ml: no AWS Region is configured")
    assert emulator.counters() == {}
