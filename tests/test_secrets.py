"""The server's secret key never appears in the server log (log_statement =
all, log_min_messages = debug1). Named to run after the other suites."""
from tests.conftest import SECRET_ACCESS_KEY


def test_secret_key_never_in_server_log(cluster, db):
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')")
    log = cluster.server_log()
    assert "aws_comprehend.detect_sentiment" in log  # the log is the one being written
    assert SECRET_ACCESS_KEY not in log
