"""Logical replication into a table whose trigger calls aws_ml. PostgreSQL's
apply and table-sync workers run with session_replication_role = replica, so
only triggers set ENABLE ALWAYS or ENABLE REPLICA fire there: once per row of
the initial COPY and once per streamed row. When the trigger fails, the
apply worker exits and the launcher starts it again, which applies the same
transaction again: every attempt pays its requests (each with
aws_ml.max_attempts tries), until the subscription is disabled.
disable_on_error = true stops it at the first error."""
import re

import psycopg
import pytest

from tests.conftest import create_database, in_flight, new_cluster, wait_until
from tests.test_dump_restore import requests, score_review, scored_by_the_service

MAX_ATTEMPTS = 3  # the subscriber's aws_ml.max_attempts
SYNCED, STREAMED = 6, 4  # rows copied by the initial sync, rows streamed after it
HANG_SECONDS = 40  # longer than a test waits

TABLE = "CREATE TABLE public.reviews (id int PRIMARY KEY, body text, sentiment varchar, confidence real)"
pytestmark = pytest.mark.slow  # two servers of their own


@pytest.fixture(scope="module")
def servers(emulator):
    """A publisher (wal_level = logical) and a subscriber whose launcher
    restarts a failed apply worker after 100 ms, not 5 s."""
    publisher = new_cluster(emulator, wal_level="logical").start()
    subscriber = new_cluster(emulator, wal_retrieve_retry_interval="100ms",
                             **{"aws_ml.max_attempts": str(MAX_ATTEMPTS)})
    try:
        subscriber.start()
        yield publisher, subscriber
    finally:
        subscriber.stop()
        publisher.stop()


REVIEW = "'review ' || n || ': ' || CASE WHEN n % 2 = 1 THEN 'I love it.' ELSE 'I hate it.' END"
ROWS = "SELECT count(*) FROM public.reviews"
WORKERS = "SELECT count(pid) FROM pg_catalog.pg_stat_subscription WHERE subname = 'reviews'"
APPLY_ERRORS = "SELECT apply_error_count FROM pg_catalog.pg_stat_subscription_stats WHERE subname = 'reviews'"
LOGGED = ("ERROR:  aws_ml: Comprehend DetectSentiment failed: Internal server error",
          "DETAIL:  AWS error code: InternalServerException (HTTP 500)",
          'LOG:  subscription "reviews" has been disabled because of an error')
SCORES = "SELECT id, body, sentiment, confidence FROM public.reviews ORDER BY id"


def insert_reviews(conn, first, last):
    """Rows first..last in one transaction of the publisher."""
    conn.execute(f"INSERT INTO public.reviews (id, body) SELECT n, {REVIEW} "
                 f"FROM pg_catalog.generate_series({first}, {last}) n")


def value(conn, sql):
    return conn.execute(sql).fetchone()[0]


@pytest.fixture
def replicated(servers):
    """A publication of a reviews table holding SYNCED rows, and a database
    on the subscriber with the same table and its BEFORE INSERT trigger
    calling aws_ml (ENABLE, the default), without a subscription. Yields the
    publisher's and the subscriber's connections and CREATE SUBSCRIPTION's
    text without options; the subscription is dropped afterwards."""
    publisher, subscriber = servers
    source = create_database(publisher, extension_sql=None)
    target = create_database(subscriber)
    with psycopg.connect(publisher.conninfo(source), autocommit=True) as pub, \
            psycopg.connect(subscriber.conninfo(target), autocommit=True) as sub:
        pub.execute(TABLE)
        insert_reviews(pub, 1, SYNCED)
        pub.execute("CREATE PUBLICATION reviews FOR TABLE public.reviews")
        sub.execute(TABLE)
        sub.execute(score_review("public"))
        sub.execute("CREATE TRIGGER score_review BEFORE INSERT ON public.reviews "
                    "FOR EACH ROW EXECUTE FUNCTION public.score_review()")
        yield pub, sub, f"CREATE SUBSCRIPTION reviews CONNECTION '{publisher.conninfo(source)}' PUBLICATION reviews"
        sub.execute("DROP SUBSCRIPTION IF EXISTS reviews")


def subscribe(sub, create, options=""):
    """Creates the subscription and waits for its initial sync."""
    sub.execute(create + (f" WITH ({options})" if options else ""))
    wait_until(lambda: value(sub, "SELECT count(*) FROM pg_catalog.pg_subscription_rel WHERE srsubstate <> 'r'") == 0
               and value(sub, ROWS) == SYNCED, "the initial sync")


@pytest.mark.parametrize("enable, fires", [("ALWAYS", True), ("REPLICA", True), ("", False)])
def test_triggers_that_fire_in_the_apply_worker_call_once_a_row(replicated, emulator, enable, fires):
    """ENABLE ALWAYS and ENABLE REPLICA triggers fire in the table-sync
    worker's COPY and in the apply worker: one request a row, each distinct
    text once; a plain ENABLE trigger does not fire there, and the rows land
    as published."""
    pub, sub, create = replicated
    if enable:
        sub.execute(f"ALTER TABLE public.reviews ENABLE {enable} TRIGGER score_review")
    emulator.reset()
    subscribe(sub, create)
    calls = {("comprehend", "DetectSentiment"): (SYNCED, SYNCED)} if fires else {}
    assert requests(emulator) == calls
    emulator.reset()
    insert_reviews(pub, SYNCED + 1, SYNCED + STREAMED)
    wait_until(lambda: value(sub, ROWS) == SYNCED + STREAMED, "the streamed rows")
    calls = {("comprehend", "DetectSentiment"): (STREAMED, STREAMED)} if fires else {}
    assert requests(emulator) == calls
    got, want = sub.execute(SCORES).fetchall(), scored_by_the_service(sub, "public.reviews")
    if fires:
        assert got == want
    else:
        assert got == [row[:2] + (None, None) for row in want]


FAULTS = {  # a fault, the subscriber database's aws_ml.max_attempts, and the requests each attempt sends
    "5xx, retried": ({"error_every": 1, "error_status": 500}, None, MAX_ATTEMPTS),
    "5xx, max_attempts = 1 by ALTER DATABASE": ({"error_every": 1, "error_status": 500}, 1, 1),
    "AccessDenied, not retried": (
        {"error_every": 1, "error_status": 400, "error_code": "AccessDeniedException"}, None, 1),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_trigger_is_retried_until_the_subscription_is_disabled(replicated, emulator, fault):
    """The apply worker applies the failed transaction again after every
    restart; each attempt sends aws_ml.max_attempts requests (the server's,
    or the database's: the worker reads ALTER DATABASE's settings; one when
    the error is not retried), until the subscription is disabled. Fixed,
    and enabled again, the transaction lands."""
    pub, sub, create = replicated
    spec, max_attempts, per_attempt = FAULTS[fault]
    if max_attempts:
        sub.execute(f'ALTER DATABASE "{sub.info.dbname}" SET aws_ml.max_attempts = {max_attempts}')
    sub.execute("ALTER TABLE public.reviews ENABLE ALWAYS TRIGGER score_review")
    subscribe(sub, create)
    emulator.reset()
    emulator.set_faults(service="comprehend", **spec)
    insert_reviews(pub, SYNCED + 1, SYNCED + 1)
    wait_until(lambda: value(sub, APPLY_ERRORS) >= 3, "three failed attempts")
    sub.execute("ALTER SUBSCRIPTION reviews DISABLE")
    wait_until(lambda: value(sub, WORKERS) == 0, "the apply worker's exit")
    # the last attempt's count reaches the statistics as its worker exits
    wait_until(lambda: requests(emulator)[("comprehend", "DetectSentiment")][0]
               == per_attempt * value(sub, APPLY_ERRORS), "every attempt's requests counted")
    attempts = value(sub, APPLY_ERRORS)
    assert requests(emulator) == {("comprehend", "DetectSentiment"): (per_attempt * attempts, 0)}
    assert value(sub, ROWS) == SYNCED
    emulator.reset()
    sub.execute("ALTER SUBSCRIPTION reviews ENABLE")
    wait_until(lambda: value(sub, ROWS) == SYNCED + 1, "the row, once the service answers")
    assert requests(emulator) == {("comprehend", "DetectSentiment"): (1, 1)}
    assert value(sub, APPLY_ERRORS) == attempts


@pytest.mark.parametrize("then", ["enabled again", "transaction skipped"])
def test_disable_on_error_stops_at_the_first_error(servers, replicated, emulator, then):
    """disable_on_error = true (PostgreSQL 15; given to CREATE SUBSCRIPTION,
    or to ALTER SUBSCRIPTION ... SET): the first failed attempt
    disables the subscription, and its requests are the last; the log has
    the error once, with the transaction's finish LSN. Enabled again once
    the service answers, the transaction lands; skipped (ALTER SUBSCRIPTION
    ... SKIP at that LSN), it is never sent again, and the next one lands."""
    pub, sub, create = replicated
    log = servers[1].server_log
    logged = {line: log().count(line) for line in LOGGED}
    sub.execute("ALTER TABLE public.reviews ENABLE ALWAYS TRIGGER score_review")
    if then == "enabled again":
        subscribe(sub, create)
        sub.execute("ALTER SUBSCRIPTION reviews SET (disable_on_error = true)")
    else:
        subscribe(sub, create, "disable_on_error = true")
    emulator.reset()
    emulator.set_faults(service="comprehend", error_every=1, error_status=500)
    insert_reviews(pub, SYNCED + 1, SYNCED + 1)
    wait_until(lambda: not value(sub, "SELECT subenabled FROM pg_catalog.pg_subscription WHERE subname = 'reviews'")
               and value(sub, WORKERS) == 0, "the subscription disabled by its error")
    assert value(sub, APPLY_ERRORS) == 1
    assert requests(emulator) == {("comprehend", "DetectSentiment"): (MAX_ATTEMPTS, 0)}
    assert {line: log().count(line) - logged[line] for line in LOGGED} == dict.fromkeys(LOGGED, 1)
    assert value(sub, ROWS) == SYNCED
    emulator.reset()
    if then == "transaction skipped":
        finished = re.findall(r'replication target relation "public.reviews" in transaction \d+, finished at (\S+)',
                              log())[-1]
        sub.execute(f"ALTER SUBSCRIPTION reviews SKIP (lsn = '{finished}')")
        insert_reviews(pub, SYNCED + 2, SYNCED + 2)
    sub.execute("ALTER SUBSCRIPTION reviews ENABLE")
    wait_until(lambda: value(sub, ROWS) == SYNCED + 1, "the next row, once the service answers")
    assert requests(emulator) == {("comprehend", "DetectSentiment"): (1, 1)}
    landed = SYNCED + (2 if then == "transaction skipped" else 1)
    assert sub.execute("SELECT max(id) FROM public.reviews").fetchone() == (landed,)


def test_dropping_the_subscription_stops_a_hanging_request(replicated, emulator):
    """DROP SUBSCRIPTION stops the apply worker (SIGTERM) while its trigger
    waits for an answer that does not come: the worker closes the request
    and exits, and DROP SUBSCRIPTION returns, before the answer."""
    pub, sub, create = replicated
    sub.execute("ALTER TABLE public.reviews ENABLE ALWAYS TRIGGER score_review")
    subscribe(sub, create)
    emulator.reset()
    emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
    insert_reviews(pub, SYNCED + 1, SYNCED + 1)
    wait_until(lambda: in_flight(emulator, "comprehend") == (1, 0), "the trigger's request in flight")
    sub.execute("DROP SUBSCRIPTION reviews")
    wait_until(lambda: in_flight(emulator, "comprehend")[0] == 0, "the request to end", seconds=HANG_SECONDS / 2)
    assert in_flight(emulator, "comprehend") == (0, 1)
    assert value(sub, ROWS) == SYNCED


def test_a_trigger_over_a_sagemaker_endpoint_fires_in_the_apply_worker(replicated, emulator):
    """aws_sagemaker.invoke_endpoint, the C function, in an ENABLE ALWAYS
    trigger: one InvokeEndpoint a row in the initial sync and in the apply
    worker, and the rows land with the model's answers."""
    pub, sub, create = replicated
    emulator.register_endpoint("replica_endpoint", model={"kind": "linear", "coef": [1.0, 2.0]})
    events = "CREATE TABLE public.events (id int PRIMARY KEY, a real, b real, score real)"
    pub.execute(events)
    pub.execute("INSERT INTO public.events (id, a, b) SELECT n, n, n * 10 FROM pg_catalog.generate_series(1, 3) n")
    pub.execute("ALTER PUBLICATION reviews ADD TABLE public.events")
    sub.execute(events)
    sub.execute("""CREATE FUNCTION public.score_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.score := aws_sagemaker.invoke_endpoint('replica_endpoint', NULL, NEW.a, NEW.b)::real;
            RETURN NEW;
        END $$""")
    sub.execute("CREATE TRIGGER score_event BEFORE INSERT ON public.events "
                "FOR EACH ROW EXECUTE FUNCTION public.score_event()")
    sub.execute("ALTER TABLE public.events ENABLE ALWAYS TRIGGER score_event")
    emulator.reset()
    subscribe(sub, create)
    assert requests(emulator) == {("sagemaker", "InvokeEndpoint"): (3, 3)}
    emulator.reset()
    pub.execute("INSERT INTO public.events (id, a, b) VALUES (4, 4, 40), (5, 5, 50)")
    wait_until(lambda: value(sub, "SELECT count(*) FROM public.events") == 5, "the streamed events")
    assert requests(emulator) == {("sagemaker", "InvokeEndpoint"): (2, 2)}
    assert sub.execute("SELECT id, score FROM public.events ORDER BY id").fetchall() == [
        (n, n + 2 * n * 10) for n in range(1, 6)]
