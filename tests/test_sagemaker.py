"""aws_sagemaker through SQL against the emulator: the reference's
user-defined functions verbatim, batch scoring, parallel query, errors."""
import datetime
import json
import uuid

import psycopg
import pytest

from tests.conftest import counter
from tests.plans import explain_analyze, force_parallel_plan, workers_launched
from tests.reference import ANALYZE_COMPANY, CLASSIFY_EVENT_2, CLASSIFY_EVENT_4, REGRESSION_MODEL

EPOCH = datetime.date(1970, 1, 1)
MAX_BODY_BYTES = 6 * 1024 * 1024

EVENTS = [(i, i % 3, EPOCH + datetime.timedelta(days=19000 + 7 * i), None if i % 10 == 4 else i * 0.5)
          for i in range(1, 201)]


def linear(coef, intercept, *features):
    return sum(c * f for c, f in zip(coef, features)) + intercept


def days(day):
    return (day - EPOCH).days


@pytest.fixture
def schema(db):
    """A schema of its own for the reference's objects, first on search_path."""
    name = f"s_{uuid.uuid4().hex[:10]}"
    db.execute(f"CREATE SCHEMA {name}")
    db.execute(f"SET search_path = {name}, public")
    yield db
    db.execute(f"DROP SCHEMA {name} CASCADE")


def events_table(conn):
    conn.execute("CREATE TABLE events (id int PRIMARY KEY, event_type int, event_day date, amount real)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s)", EVENTS)


def direct_outputs(aws_client, endpoint, body):
    answer = aws_client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType="text/csv", Accept="text/csv")
    return answer["Body"].read().decode().splitlines()


def sql_error(conn, sql, params=None):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params)
    return caught.value.diag


def test_reference_classify_event_two_arguments_verbatim(schema, emulator):
    coef = [2.0, 1.0]
    emulator.register_endpoint("sagemaker_model_endpoint_name", model={"kind": "linear", "coef": coef, "intercept": 3})
    schema.execute(CLASSIFY_EVENT_2)
    events_table(schema)
    rows = schema.execute("SELECT id, classify_event(event_type, event_day) FROM events ORDER BY id").fetchall()
    assert rows == [(i, linear(coef, 3, t, days(d))) for i, t, d, _ in EVENTS]
    # batch mode: the 200 rows in batches of 25, 50, 100 and 25, a request each
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint", "batch_sizes") == [25, 50, 100, 25]


def test_reference_classify_event_with_batch_size_verbatim(schema, emulator):
    coef = [1.0, 1.0, 2.0]
    emulator.register_endpoint("sagemaker_model_endpoint_name", model={"kind": "linear", "coef": coef})
    schema.execute(CLASSIFY_EVENT_4)
    events_table(schema)
    rows = schema.execute("SELECT id, classify_event(event_type, event_day, amount) FROM events ORDER BY id"
                          ).fetchall()
    # COALESCE(amount, 0.0): a NULL amount goes out as 0.0
    assert rows == [(i, linear(coef, 0, t, days(d), a or 0.0)) for i, t, d, a in EVENTS]
    assert schema.execute("SELECT classify_event(2, '2024-01-01', NULL, 10)").fetchone()[0] \
        == linear(coef, 0, 2, days(datetime.date(2024, 1, 1)), 0)


def test_reference_regression_model_over_an_array_verbatim(schema, emulator):
    coef = [0.25, -1.5, 2.0, 0.125]
    emulator.register_endpoint("sagemaker_model_endpoint_name",
                               model={"kind": "linear", "coef": coef, "intercept": 0.5})
    schema.execute(REGRESSION_MODEL)
    for params in ([1.0, 2.0, 3.0, 4.0], [0.5, -0.25, 8.0, 1e3], [None, 1.0, 1.0, 1.0]):
        estimate = schema.execute("SELECT regression_model(%s::real[])", (params,)).fetchone()[0]
        # an empty field (NULL) is a missing feature, which the linear model reads as 0
        assert estimate == pytest.approx(linear(coef, 0.5, *[p or 0.0 for p in params]), rel=1e-6)


def test_reference_analyze_company_composite_output_verbatim(schema, emulator, aws_client):
    emulator.register_endpoint("endpt_name", model={
        "kind": "linear", "coef": [[0.12, -0.05], [-0.2, 0.6]], "intercept": [0.02, 0.1]})
    schema.execute(ANALYZE_COMPANY)
    companies = [(1.5, 0.25), (0.0, 0.0), (12.125, 3.5)]
    for free_cash_flow, debt in companies:
        row = schema.execute("SELECT (analyze_company(%s::numeric, %s::numeric)).*", (free_cash_flow, debt)).fetchone()
        want = [float(v) for v in direct_outputs(aws_client, "endpt_name", f"{free_cash_flow},{debt}\n")[0].split(",")]
        assert row[0] == pytest.approx(want[0], rel=1e-6)  # real
        assert row[1] == pytest.approx(want[1], rel=1e-12)  # float
        by_name = schema.execute(
            "SELECT (analyze_company(%s::numeric, %s::numeric, 1)).one_year_bankruptcy_probability",
            (free_cash_flow, debt)).fetchone()[0]
        assert by_name == row[1]
    point = schema.execute("SELECT aws_sagemaker.invoke_endpoint('endpt_name', NULL, 1, 2)::point").fetchone()[0]
    want = direct_outputs(aws_client, "endpt_name", "1,2\n")[0]
    assert point == "(" + want + ")"


def test_builtin_models_answer_through_sql_as_directly(db, aws_client):
    rows = [(0.5, -1.0, 2.0, 0.0), (-2.0, 0.25, 0.0, 1.0)]
    for endpoint in ("xgboost-churn", "linear-regression"):
        for row in rows:
            got = db.execute("SELECT aws_sagemaker.invoke_endpoint(%s, NULL, %s, %s, %s, %s)", (endpoint, *row)
                             ).fetchone()[0]
            assert got == direct_outputs(aws_client, endpoint, ",".join(map(str, row)) + "\n")[0]
    got = db.execute("SELECT aws_sagemaker.invoke_endpoint('xgboost-classifier', NULL, 3.0, 3.0)::int").fetchone()[0]
    assert str(got) == direct_outputs(aws_client, "xgboost-classifier", "3.0,3.0\n")[0]


def parallel_plan(conn, query):
    force_parallel_plan(conn)
    return explain_analyze(conn, query)


def test_reference_wrappers_under_a_parallel_plan(schema, emulator, connect):
    coef = [1.0, 1.0, 2.0]
    emulator.register_endpoint("sagemaker_model_endpoint_name", model={"kind": "linear", "coef": coef})
    schema.execute(CLASSIFY_EVENT_4)
    events_table(schema)
    schema.execute("ALTER TABLE events SET (parallel_workers = 2)")
    search_path = schema.execute("SHOW search_path").fetchone()[0]
    query = "SELECT id, classify_event(event_type, event_day, amount) FROM events"
    expected = sorted((i, linear(coef, 0, t, days(d), a or 0.0)) for i, t, d, a in EVENTS)

    # A new backend: the module is first loaded by this parallel query.
    conn = connect(options=f"-c search_path={search_path.replace(' ', '')}")
    plan = parallel_plan(conn, query)
    launched = workers_launched(plan)
    assert launched and launched[0] >= 1, json.dumps(plan)
    assert sorted(conn.execute(query).fetchall()) == expected
    conn.execute("SET max_parallel_workers_per_gather = 0")
    assert workers_launched(explain_analyze(conn, query)) == []
    assert sorted(conn.execute(query).fetchall()) == expected


def test_first_load_inside_a_parallel_query_is_refused_not_misconfigured(schema, emulator, connect):
    """A wrapper PostgreSQL cannot inline (SET clause) is planned only inside
    the parallel query, where the module could not apply the server's
    aws_ml.* settings: 55000, and the next statement loads it properly."""
    schema.execute("CREATE FUNCTION fields(a int, b int) RETURNS int AS $$ "
                   "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, a, b)::int $$ "
                   "LANGUAGE SQL PARALLEL SAFE SET work_mem = '8MB'")
    events_table(schema)
    schema.execute("ALTER TABLE events SET (parallel_workers = 2)")
    search_path = schema.execute("SHOW search_path").fetchone()[0].replace(" ", "")
    conn = connect(options=f"-c search_path={search_path}")
    with pytest.raises(psycopg.Error) as caught:
        parallel_plan(conn, "SELECT sum(fields(id, event_type)) FROM events")
    assert caught.value.diag.sqlstate == "55000" and "session_preload_libraries" in caught.value.diag.message_hint
    assert conn.execute("SELECT fields(1, 2)").fetchone()[0] == 2
    assert conn.execute("SHOW aws_ml.endpoint_url").fetchone()[0] == emulator.url
    assert conn.execute("SELECT sum(fields(id, event_type)) FROM events").fetchone()[0] == 2 * len(EVENTS)


def test_batch_of_2500_rows_with_1000_per_batch_is_3_requests_in_order(db, emulator, aws_client):
    rows = [(i % 7 - 3.0, i / 100.0, (i * 37) % 11 * 0.5, 1.0 if i % 2 else -1.0) for i in range(2500)]
    got = db.execute("SELECT ordinality, model_output FROM aws_sagemaker.batch_invoke_endpoint("
                     "'linear-regression', 1000, %s::float8[][])", (None,)).fetchall()
    assert got == []  # NULL model_inputs: no rows, no request
    got = db.execute(
        "SELECT ordinality, model_output FROM aws_sagemaker.batch_invoke_endpoint('linear-regression', 1000, "
        "ARRAY(SELECT ROW(a, b, c, d) FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[]) "
        "WITH ORDINALITY AS t(a, b, c, d, n) ORDER BY n))", [list(column) for column in zip(*rows)]).fetchall()
    sagemaker = emulator.counters()["sagemaker"]["InvokeEndpoint"]
    assert sagemaker["requests"] == 3 and sorted(sagemaker["batch_sizes"]) == [500, 1000, 1000]
    body = "".join(",".join(repr(v) for v in row) + "\n" for row in rows)
    assert got == list(enumerate(direct_outputs(aws_client, "linear-regression", body), start=1))


def test_batch_of_the_reference_events_table(schema, emulator):
    coef = [1.0, 1.0, 2.0]
    emulator.register_endpoint("sagemaker_model_endpoint_name", model={"kind": "linear", "coef": coef})
    events_table(schema)
    got = schema.execute(
        "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('sagemaker_model_endpoint_name', 64, "
        "ARRAY(SELECT ROW(event_type, event_day, amount) FROM events ORDER BY id))").fetchall()
    # a NULL amount is an empty field: a missing feature, 0 for this model
    assert [(n, float(output)) for n, output in got] == \
        [(n, linear(coef, 0, t, days(d), a or 0.0)) for n, (_, t, d, a) in enumerate(EVENTS, start=1)]
    assert sorted(emulator.counters()["sagemaker"]["InvokeEndpoint"]["batch_sizes"]) == [8, 64, 64, 64]


def test_batch_over_6_mb_is_split_and_keeps_order(db, emulator):
    """Each row: 150,000 ten-byte fields (1.5 MB) and n more; echo-row-count
    answers each row's field count, so the answers show the order."""
    count = 9
    got = db.execute(
        "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
        "ARRAY(SELECT ROW(array_fill(123456789, ARRAY[150000]), array_fill(0, ARRAY[n])) "
        "FROM generate_series(1, %s) n ORDER BY n))", (count,)).fetchall()
    assert got == [(n, str(150000 + n)) for n in range(1, count + 1)]
    sizes = emulator.counters()["sagemaker"]["InvokeEndpoint"]["batch_sizes"]
    assert len(sizes) > 1 and sum(sizes) == count
    assert all(len(body.encode()) <= MAX_BODY_BYTES for body in emulator.sagemaker_bodies())


def test_batch_null_elements_are_not_sent_and_answer_null(db, emulator):
    got = db.execute("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
                     "ARRAY[ROW(1, 2, 3), NULL, ROW(4, NULL, 6)])").fetchall()
    assert got == [(1, "3"), (2, None), (3, "3")]
    assert emulator.counters()["sagemaker"]["InvokeEndpoint"]["batch_sizes"] == [2]
    got = db.execute("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', 5, "
                     "ARRAY[1.5, NULL, 2.5])").fetchall()
    assert got == [(1, "1"), (2, None), (3, "1")]


def test_variadic_limits_arrays_and_nulls(db, emulator):
    args = ", ".join(str(i) for i in range(98))  # 98 inputs + 2: PostgreSQL's 100 arguments
    assert db.execute(f"SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, {args})").fetchone()[0] == "98"
    assert db.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, VARIADIC ARRAY[1, 2, 3])"
                      ).fetchone()[0] == "3"
    assert db.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, NULL::int, NULL::text, "
                      "ARRAY[NULL, 1])").fetchone()[0] == "4"
    assert db.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, array_fill(7, ARRAY[100000]))"
                      ).fetchone()[0] == "100000"
    assert emulator.sagemaker_bodies()[-1] == ",".join(["7"] * 100000) + "\n"


@pytest.mark.parametrize("sql, sqlstate", [
    ("SELECT aws_sagemaker.invoke_endpoint(NULL, NULL, 1)", "22004"),
    ("SELECT aws_sagemaker.invoke_endpoint('', NULL, 1)", "22023"),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', 0, 1)", "22023"),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, '{{1,2},{3,4}}'::int[])", "22023"),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, VARIADIC '{}'::int[])", "22023"),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, array_fill(1, ARRAY[4000000]))", "22023"),
    ("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, '{{1},{2}}'::int[])", "22023"),
    ("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
     "ARRAY[repeat('y', 3000000), repeat('z', 7000000)])", "22023"),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count')", "42883"),  # no model input: no such function
])
def test_argument_errors_send_nothing(db, emulator, sql, sqlstate):
    assert sql_error(db, sql).sqlstate == sqlstate
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint") == 0


def test_unknown_endpoint_is_42704_naming_it(db):
    diag = sql_error(db, "SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1, 2)")
    assert diag.sqlstate == "42704"
    assert "no-such-endpoint" in diag.message_primary and "SageMaker InvokeEndpoint" in diag.message_primary


def test_model_error_is_38000_with_the_models_message(db):
    diag = sql_error(db, "SELECT aws_sagemaker.invoke_endpoint('linear-regression', NULL, 1, 2, 'three', 4)")
    assert diag.sqlstate == "38000"
    assert "AWS error code: ModelError" in diag.message_detail
    assert "'three'" in diag.message_detail  # the container's own message


def test_answer_with_a_wrong_line_count_is_38000_naming_the_endpoint(db):
    # The emulator skips the blank line, as CSV readers do: one answer for two rows.
    diag = sql_error(db, "SELECT aws_sagemaker._invoke_endpoint_csv('echo-row-count', NULL, ARRAY[E'1,2\\n', E'\\n'])")
    assert diag.sqlstate == "38000"
    assert "echo-row-count" in diag.message_primary and "1 line(s) for 2 row(s)" in diag.message_primary


def test_execute_on_the_entry_point_is_enough(db, connect, login_role):
    """The C entry points call the internal PL/Python function through fmgr,
    without a second EXECUTE check."""
    role = login_role()
    db.execute(f"GRANT USAGE ON SCHEMA aws_sagemaker TO {role}")
    db.execute(f"GRANT EXECUTE ON FUNCTION aws_sagemaker.invoke_endpoint(varchar, int, VARIADIC \"any\") TO {role}")
    tenant = connect(user=role)
    assert tenant.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1, 2)").fetchone()[0] == "2"
    assert sql_error(tenant, "SELECT aws_sagemaker._invoke_endpoint_csv('echo-row-count', NULL, ARRAY[E'1\\n'])"
                     ).sqlstate == "42501"
    assert sql_error(tenant, "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, ARRAY[1])"
                     ).sqlstate == "42501"


@pytest.mark.slow
def test_scroll_cursor_over_a_batch_fetches_backward_the_right_rows(db, cluster, emulator):
    """The batch function's result is materialized for random access when a
    SCROLL cursor asks for it: 17 million rows spill far beyond work_mem
    (this crashed the server), and a small batch returns exact rows."""
    with db.transaction():
        db.execute("SET LOCAL work_mem = '64kB'")
        db.execute("DECLARE c SCROLL CURSOR FOR SELECT * FROM aws_sagemaker.batch_invoke_endpoint("
                   "'ep', NULL, array_fill(NULL::int, ARRAY[17000000]))")
        db.execute("MOVE 16777210 FROM c")
        assert db.execute("FETCH BACKWARD 2 FROM c").fetchall() == [(16777209, None), (16777208, None)]
        assert db.execute("FETCH 3 FROM c").fetchall() == [(16777209, None), (16777210, None), (16777211, None)]
    assert "terminated by signal" not in cluster.server_log()
    emulator.register_endpoint("times-two", model={"kind": "linear", "coef": [2.0]})
    with db.transaction():
        db.execute("SET LOCAL work_mem = '64kB'")
        db.execute("DECLARE c SCROLL CURSOR FOR SELECT * FROM aws_sagemaker.batch_invoke_endpoint("
                   "'times-two', NULL, ARRAY(SELECT n FROM generate_series(1, 20000) n))")
        db.execute("MOVE 15000 FROM c")
        got = db.execute("FETCH BACKWARD 4 FROM c").fetchall()
        assert got == [(n, str(2 * n)) for n in (14999, 14998, 14997, 14996)]
        assert db.execute("FETCH ABSOLUTE 7 FROM c").fetchall() == [(7, "14")]
        assert db.execute("FETCH LAST FROM c").fetchall() == [(20000, "40000")]


def test_composite_elements_whose_type_lost_a_column(db, emulator):
    db.execute("DROP TABLE IF EXISTS shrunk")
    db.execute("CREATE TABLE shrunk (a int, b text, c int)")
    db.execute("INSERT INTO shrunk VALUES (1, 'x', 2), (3, 'y', 4)")
    db.execute("ALTER TABLE shrunk DROP COLUMN b")
    got = db.execute("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
                     "ARRAY(SELECT s FROM shrunk s ORDER BY a))").fetchall()
    assert got == [(1, "2"), (2, "2")]
    assert emulator.sagemaker_bodies()[-1] == "1,2\n3,4\n"
    db.execute("DROP TABLE shrunk")


def test_composite_elements_whose_type_changes_within_the_statement(db):
    """A function the query calls alters the row type between two rows: the
    second row is written with the type's new columns, not the first row's."""
    db.execute("DROP TYPE IF EXISTS altered CASCADE")
    db.execute("CREATE TYPE altered AS (a int, b int)")
    db.execute("""CREATE FUNCTION altered_rows(i int) RETURNS altered[] LANGUAGE plpgsql AS $$
        DECLARE result altered[];
        BEGIN
            IF i = 2 THEN ALTER TYPE altered ADD ATTRIBUTE c text; END IF;
            EXECUTE format('SELECT ARRAY[ROW(%s, %s%s)::altered]', i, i, CASE WHEN i = 2 THEN ', ''x''' ELSE '' END)
                INTO result;
            RETURN result;
        END $$""")
    try:
        got = db.execute("SELECT aws_sagemaker._csv_rows(altered_rows(i)) FROM generate_series(1, 2) i").fetchall()
        assert got == [(["1,1\n"],), (["2,2,x\n"],)]
    finally:
        db.execute("DROP TYPE altered CASCADE")


@pytest.mark.parametrize("rows", [["1,2\n3,4\n", ""], ["1,2\n", ""], ["1,2"], ['"a\nb"\n"c"\n']])
def test_csv_elements_that_are_not_one_row_are_refused(db, emulator, rows):
    diag = sql_error(db, "SELECT aws_sagemaker._invoke_endpoint_csv('echo-row-count', 10, %s)", (rows,))
    assert diag.sqlstate == "22023" and "exactly one record" in diag.message_primary
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint") == 0
    assert db.execute("SELECT aws_sagemaker._invoke_endpoint_csv('echo-row-count', 10, %s)",
                      (['"a\nb",c\n', "1\n"],)).fetchone()[0] == ["2", "1"]


@pytest.mark.parametrize("status, code, sqlstate, hint", [
    (429, "ModelNotReadyException", "53400", "still being loaded"),
    (530, "InternalDependencyException", "38000", "The service or the model failed"),
])
def test_sagemaker_runtime_errors_map_to_their_sqlstate(db, emulator, status, code, sqlstate, hint):
    """Neither is retried: botocore's standard mode retries throttling codes
    and 500, 502, 503 and 504 only."""
    emulator.set_faults(service="sagemaker", error_code=code, error_status=status, error_every=1)
    db.execute("SET aws_ml.max_attempts = 2")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1)")
    assert caught.value.diag.sqlstate == sqlstate
    assert "SageMaker InvokeEndpoint" in caught.value.diag.message_primary
    assert code in caught.value.diag.message_detail and hint in caught.value.diag.message_hint
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint") == 1
