"""One emulator for the emulator's own tests, and boto3 clients to it."""
import os
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from emulator.client import Emulator  # noqa: E402

ACCESS_KEY_ID = "AKIAEMULATORTEST0001"
SECRET_ACCESS_KEY = "emulator-secret"
REGION = "us-east-1"

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def emulator():
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh(emulator):
    """Every test starts with no counters, no faults, no recorded bodies."""
    emulator.reset()


@pytest.fixture
def access_key_id():
    """The key id the clients sign with unless told otherwise."""
    return ACCESS_KEY_ID


@pytest.fixture
def client(emulator):
    """client(service, **config) -> a boto3 client to the emulator. Retries are
    off unless asked for, so that one call is one request."""

    def make(service, access_key_id=ACCESS_KEY_ID, secret=SECRET_ACCESS_KEY, session_token=None, **config):
        config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
        return boto3.session.Session().client(
            service,
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            aws_session_token=session_token,
            config=Config(**config),
        )

    return make

