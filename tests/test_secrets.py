"""The server's secret key and session token never appear in what a client
sees (errors and notices, at every message level) nor in the server log
(log_statement = all, log_min_messages = debug1), which the tests before it
have written to: conftest sorts this file last (scripts/test's workers are
handed it after every other file), and checks the whole log of each
worker's cluster again when its session ends."""
import psycopg
import pytest

from tests.conftest import SECRET_ACCESS_KEY, SESSION_TOKEN

ROLE_ARN = "arn:aws:iam::123456789012:role/aws-ml-secrets-test"
CALL = "SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')"
# A failed call of each kind: the service denies, STS refuses the role, the
# network fails, throttling outlasts every attempt.
FAILURES = {
    "access_denied": ({"service": "comprehend", "error_code": "AccessDeniedException", "error_status": 403,
                       "error_every": 1}, None, "42501"),
    "assume_role_denied": ({"service": "sts", "error_code": "AccessDenied", "error_status": 403,
                            "error_every": 1}, ROLE_ARN, "42501"),
    "expired_token": ({"service": "comprehend", "error_code": "ExpiredTokenException", "error_status": 400,
                       "error_every": 1}, None, "42501"),
    "dropped_connection": ({"service": "comprehend", "drop_every": 1}, None, "58030"),
    "throttled": ({"service": "comprehend", "throttle_every": 1}, None, "53400"),
    # AWS answers with the canonical request it expected, the signed session
    # token among its headers
    "signature_mismatch": ({"service": "comprehend", "error_code": "InvalidSignatureException",
                            "error_status": 403, "error_every": 1}, None, "42501"),
    "assume_role_signature_mismatch": ({"service": "sts", "error_code": "SignatureDoesNotMatch",
                                        "error_status": 403, "error_every": 1}, ROLE_ARN, "42501"),
}


def seen_text(diag):
    """Every field of a diagnostic a client can read."""
    return "\n".join(str(getattr(diag, field)) for field in dir(diag) if not field.startswith("_"))


@pytest.mark.parametrize("failure", FAILURES)
def test_errors_and_notices_never_show_the_secret(db, emulator, failure):
    fault, role_arn, sqlstate = FAILURES[failure]
    emulator.set_faults(**fault)
    db.execute("SET client_min_messages = debug5")
    db.execute("SET aws_ml.max_attempts = 2")
    if role_arn:
        db.execute(f"SET aws_ml.comprehend_role_arn = '{role_arn}'")
    notices = []
    db.add_notice_handler(lambda diag: notices.append(seen_text(diag)))
    with pytest.raises(psycopg.Error) as caught:
        db.execute(CALL)
    assert caught.value.diag.sqlstate == sqlstate
    seen = "\n".join([str(caught.value), seen_text(caught.value.diag), *notices])
    assert caught.value.diag.message_primary in seen  # the text checked is the text the client got
    assert SECRET_ACCESS_KEY not in seen
    assert SESSION_TOKEN not in seen


def test_secret_key_and_session_token_never_in_server_log(cluster, db):
    db.execute(CALL)
    log = cluster.server_log()
    assert "aws_comprehend.detect_sentiment" in log  # the log is the one being written
    assert SECRET_ACCESS_KEY not in log
    assert SESSION_TOKEN not in log
