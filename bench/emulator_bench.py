"""Emulator throughput from one boto3 client: DetectSentiment requests/s and
linear-regression InvokeEndpoint rows/s (1,000-row bodies).

    .venv/bin/python bench/emulator_bench.py [--seconds 5]

Prints a table and writes bench/results/emulator.json."""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
import numpy as np  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench import common  # noqa: E402
from emulator.client import Emulator  # noqa: E402

AIMS = {"detect_sentiment_requests_per_s": 500, "invoke_endpoint_rows_per_s": 50_000}
ROWS_PER_REQUEST = 1000


def _client(service, url):
    return boto3.session.Session().client(
        service, endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="AKIAEMULATORTEST0001", aws_secret_access_key="emulator-secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _rate(call, seconds):
    """Calls per second of call() over about `seconds`, after a warm-up."""
    for _ in range(20):
        call()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        calls += 1
    return calls / (time.perf_counter() - started)


def _start_seconds():
    started = time.perf_counter()
    server = Emulator()
    elapsed = time.perf_counter() - started
    server.stop()
    return elapsed


def measure(seconds=5.0):
    """The emulator's throughput figures, beside their aims, and its start time."""
    start = _start_seconds()
    server = Emulator()
    try:
        comprehend = _client("comprehend", server.url)
        sentiment = _rate(
            lambda: comprehend.detect_sentiment(Text="Your support team is just awesome!", LanguageCode="en"),
            seconds,
        )
        runtime = _client("sagemaker-runtime", server.url)
        rows = np.random.default_rng(1).normal(size=(ROWS_PER_REQUEST, 4))
        body = "".join(",".join("%.6f" % v for v in row) + "\n" for row in rows)
        invocations = _rate(
            lambda: runtime.invoke_endpoint(EndpointName="linear-regression", Body=body, ContentType="text/csv")[
                "Body"
            ].read(),
            seconds,
        )
    finally:
        server.stop()
    return {
        "figures": {
            "detect_sentiment_requests_per_s": round(sentiment, 1),
            "invoke_endpoint_rows_per_s": round(invocations * ROWS_PER_REQUEST),
        },
        "aims": AIMS,
        "start_to_listening_line_s": round(start, 3),
        "seconds_per_figure": seconds,
        "machine": common.machine(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per figure")
    args = parser.parse_args()
    results = measure(args.seconds)
    print(f"{'figure':<36}{'measured':>12}{'aim':>10}")
    for name, value in results["figures"].items():
        print(f"{name:<36}{value:>12}{AIMS[name]:>10}  {'ok' if value >= AIMS[name] else 'BELOW AIM'}")
    print(f"{'start_to_listening_line_s':<36}{results['start_to_listening_line_s']:>12.2f}{2:>10}")
    print(f"written to {common.write_results('emulator', results)}")


if __name__ == "__main__":
    main()
