"""Base credentials from the server's environment; a service's role ARN makes
its requests use STS AssumeRole credentials, assumed once per backend."""
from tests.conftest import ACCESS_KEY_ID, counter

ROLE = "arn:aws:iam::123456789012:role/aurora-comprehend"


def test_without_role_requests_are_signed_with_the_base_key(db, emulator):
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('hello there', 'en')")
    keys = emulator.counters()["comprehend"]["DetectSentiment"]["access_key_ids"]
    assert keys == {ACCESS_KEY_ID: 1}


def test_role_arn_assumes_once_per_backend_and_signs_with_the_role(db, connect, emulator):
    db.execute(f"SET aws_ml.comprehend_role_arn = '{ROLE}'")
    for i in range(50):
        db.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", (f"call {i} is fine",))
    counters = emulator.counters()
    assert counter(counters, "sts", "AssumeRole") == 1
    assert counters["sts"]["AssumeRole"]["access_key_ids"] == {ACCESS_KEY_ID: 1}
    keys = counters["comprehend"]["DetectSentiment"]["access_key_ids"]
    assert len(keys) == 1 and ACCESS_KEY_ID not in keys
    assert sum(keys.values()) == 50

    other = connect()
    other.execute(f"SET aws_ml.comprehend_role_arn = '{ROLE}'")
    other.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment(ARRAY['good', 'bad'], 'en')")
    assert counter(emulator.counters(), "sts", "AssumeRole") == 2


def test_role_for_one_service_leaves_the_others_on_base_credentials(db, emulator):
    db.execute(f"SET aws_ml.bedrock_role_arn = '{ROLE}'")
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('hello there', 'en')")
    counters = emulator.counters()
    assert counter(counters, "sts", "AssumeRole") == 0
    assert counters["comprehend"]["DetectSentiment"]["access_key_ids"] == {ACCESS_KEY_ID: 1}


def cached_clients_and_roles(db):
    notices = []
    db.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    db.execute("DO $$ from aws_ml import clients, credentials; plpy.notice(f'{len(clients._clients)} {len(credentials._assumed)}') "
               "$$ LANGUAGE plpython3u")
    return tuple(int(n) for n in notices[-1].split())


def test_a_session_keeps_at_most_16_clients_and_16_roles(db, emulator):
    """A client (with its connections) per setting tried would pile up: the
    least recently used go. 20 timeouts, then 20 roles, each of them used."""
    call = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"
    for timeout in range(20):
        db.execute(f"SET aws_ml.request_timeout_ms = {60000 + timeout}")
        assert db.execute(call).fetchone() == ("POSITIVE",)
    assert cached_clients_and_roles(db) == (16, 0)
    db.execute("RESET aws_ml.request_timeout_ms")
    emulator.reset()
    for role in range(20):
        db.execute(f"SET aws_ml.comprehend_role_arn = 'arn:aws:iam::123456789012:role/role-{role}'")
        assert db.execute(call).fetchone() == ("POSITIVE",)
    assert cached_clients_and_roles(db) == (16, 16)
    assert counter(emulator.counters(), "sts", "AssumeRole") == 20
    db.execute("RESET aws_ml.comprehend_role_arn")
