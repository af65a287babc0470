"""The server's secret key and session token never appear in the server log
(log_statement = all, log_min_messages = debug1), which every other test has
written to: conftest runs this file last."""
from tests.conftest import SECRET_ACCESS_KEY, SESSION_TOKEN


def test_secret_key_and_session_token_never_in_server_log(cluster, db):
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')")
    log = cluster.server_log()
    assert "aws_comprehend.detect_sentiment" in log  # the log is the one being written
    assert SECRET_ACCESS_KEY not in log
    assert SESSION_TOKEN not in log
