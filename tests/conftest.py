"""Fixtures: the emulator, a throwaway cluster with aws_ml installed, and
connections. Everything is started here and stopped when the session ends."""
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

# .ci/run's profile: the same examples on every run (a CI failure is
# reproducible), and no deadline that a loaded machine would miss.
settings.register_profile("ci", derandomize=True, deadline=None)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.client import Emulator  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

# The server's base credentials. The secret key and the session token are
# never to appear in the server log, an error or a notice (test_secrets.py).
ACCESS_KEY_ID = "AKIAAWSMLTESTBASE001"
SECRET_ACCESS_KEY = "aws-ml-test-secret-3J9xQvR2kLm8Zt"
SESSION_TOKEN = "aws-ml-test-session-token-Wq4TnY7pB1sHc0"
REGION = "us-east-1"


# The files that take longest, handed out first to scripts/test's workers
# (pytest-xdist hands out files in this order), so that none is left running
# alone at the end.
LONGEST_FIRST = ("test_postgres_regression.py", "test_batch_differential.py", "test_batch_mode.py", "test_s3.py",
                 "test_install_layout.py", "test_encoding_errors.py", "test_settings.py", "test_citus.py",
                 "test_pg_cron.py")


def pytest_collection_modifyitems(items):
    """The longest files first; the secrets check, which reads the server log
    the tests before it have written, last."""
    items.sort(key=lambda item: (item.path.name == "test_secrets.py", item.path.name not in LONGEST_FIRST))


@pytest.fixture(scope="session")
def emulator():
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def faults_end_with_their_test(request):
    """A fault a test injects must not fail the next test, whatever fixtures
    that one uses."""
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


def new_cluster(emulator, **settings):
    """A cluster (not yet initialised) whose server uses the emulator and the
    test credentials."""
    return Cluster(
        settings={
            "aws_ml.region": REGION,
            "aws_ml.endpoint_url": emulator.url,
            **settings,
        },
        environment={
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent/aws_ml/config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws_ml/credentials",
        },
    )


@pytest.fixture(scope="session")
def cluster(emulator):
    """The shared cluster. When the session ends, its log, which every test
    of this pytest process has written to (log_statement = all,
    log_min_messages = debug1), must hold neither the secret key nor the
    session token (tests/test_secrets.py checks it during the session too)."""
    server = new_cluster(emulator, log_statement="all", log_min_messages="debug1",
                         max_worker_processes="16", max_parallel_workers="8").start()
    yield server
    log = server.server_log()
    server.stop()
    assert SECRET_ACCESS_KEY not in log and SESSION_TOKEN not in log, "a secret is in the shared cluster's log"


def in_encoding(encoding):
    """CREATE DATABASE's options for a database in encoding."""
    return f"ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"


def create_database(cluster, name=None, extension_sql="CREATE EXTENSION aws_ml CASCADE", options=""):
    """options: CREATE DATABASE's, such as in_encoding("LATIN1")."""
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}')
    if extension_sql:
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
            conn.execute(extension_sql)
    return name


@pytest.fixture(scope="session")
def database(cluster):
    """A database with aws_ml installed, shared by the behaviour tests."""
    return create_database(cluster, "aws_ml_test")


@pytest.fixture
def fresh_database(cluster):
    """A new, empty database (no extension), dropped afterwards."""
    names = []

    def make(extension_sql=None):
        names.append(create_database(cluster, extension_sql=extension_sql))
        return names[-1]
    yield make
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def connect(cluster, database):
    """Opens autocommit connections to the shared database, closed afterwards."""
    opened = []

    def open_connection(user="postgres", dbname=database, **kwargs):
        opened.append(psycopg.connect(cluster.conninfo(dbname, user), autocommit=True, **kwargs))
        return opened[-1]
    yield open_connection
    for conn in opened:
        conn.close()


@pytest.fixture
def db(connect, emulator):
    """A superuser connection to the shared database, with the emulator's
    counters and faults reset."""
    emulator.reset()
    return connect()


@pytest.fixture
def login_role(cluster, database):
    """Creates login roles without any grant; dropped afterwards."""
    created = []

    def make():
        name = f"user_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN")
        created.append(name)
        return name
    yield make
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
        for name in created:
            conn.execute(f"REASSIGN OWNED BY {name} TO postgres")
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def wait_until(condition, what, seconds=60):
    """Polls condition until it holds; fails the test after seconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


def in_flight(emulator, service):
    """The emulator's requests of service being answered now, and those whose
    client closed the connection before the answer."""
    operations = emulator.counters().get(service, {}).values()
    return sum(o["in_flight"] for o in operations), sum(o["abandoned"] for o in operations)


def stop_when(connect, pid, reached, what, stop="pg_cancel_backend"):
    """Stops the backend pid, from a thread, once reached() holds: a state
    of its statement seen from outside (a request in flight at the
    emulator, a row committed), never a guess of time; the thread."""
    stopper = connect()

    def wait_then_stop():
        wait_until(reached, what)
        stopper.execute(f"SELECT {stop}(%s)", (pid,))
        stopper.close()
    thread = threading.Thread(target=wait_then_stop)
    thread.start()
    return thread


def requests_in_flight(emulator, service, count):
    return lambda: in_flight(emulator, service)[0] >= count


def counter(counters, service, operation, field="requests"):
    return counters.get(service, {}).get(operation, {}).get(field, 0)


@pytest.fixture(scope="session")
def aws_client(emulator):
    """boto3 clients straight to the emulator, to compare SQL with."""
    import boto3
    session = boto3.session.Session(aws_access_key_id="AKIATESTDIRECTCLIENT",
                                    aws_secret_access_key="direct-client-secret", region_name=REGION)
    return lambda name: session.client(name, endpoint_url=emulator.url)
