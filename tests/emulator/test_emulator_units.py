"""The pure parts: the CSV codec, the sentiment mapping, the embeddings, fault plans."""
import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import sentiment
from emulator.counters import Counters
from emulator.embeddings import embed
from emulator.faults import FaultInjector
from emulator.features import FeatureError, feature, feature_matrix, format_line, parse_rows

ROOT = Path(__file__).resolve().parents[2]
fields = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(fields, min_size=1, max_size=5), max_size=6))
def test_parse_rows_reads_what_csv_writer_wrote(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    # a row of one empty field is written as "" and so still a row
    assert parse_rows(out.getvalue()) == rows


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_formatted_number_reads_back_within_9_digits(value):
    assert float(format_line([value])) == pytest.approx(value, rel=1e-8, abs=0)


def test_integral_values_print_as_integers():
    assert format_line([1.0, 0.0, -2.0, 0.05]) == "1,0,-2,0.05"


@pytest.mark.parametrize("field", ["abc", "2024-13-01", "2024-1-1", "yes"])
def test_unreadable_fields_name_the_value(field):
    with pytest.raises(FeatureError, match=field):
        feature(field, 1, 1)


def test_empty_field_is_missing():
    assert math.isnan(feature("", 1, 1))


def test_feature_matrix_checks_the_width():
    with pytest.raises(FeatureError, match="row 2"):
        feature_matrix([["1", "2"], ["1"]], 2)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_sentiment_scores_sum_to_one_and_name_the_top_label(text):
    label, scores = sentiment.detect(text)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert all(0 <= value <= 1 for value in scores.values())
    assert scores[label.capitalize()] == max(scores.values())


def test_embeddings_do_not_depend_on_the_process_hash_seed():
    program = "from emulator.embeddings import embed; print(embed('stable across runs', 64))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{embed('stable across runs', 64)}\n"}


def test_throttle_every_counts_from_the_first_request_after_setting():
    faults = FaultInjector()
    faults.plan("comprehend")
    faults.set({"service": "comprehend", "throttle_every": 3})
    outcomes = [faults.plan("comprehend").outcome for _ in range(6)]
    assert outcomes == [None, None, "throttle", None, None, "throttle"]
    assert faults.plan("bedrock").outcome is None


def test_body_contains_limits_a_fault_to_the_requests_holding_that_text():
    faults = FaultInjector()
    faults.set({"service": "bedrock", "hang_seconds": 30, "body_contains": "slow"})
    assert faults.plan("bedrock", b'{"inputText": "slow one"}').delay_seconds == 30
    assert faults.plan("bedrock", b'{"inputText": "quick one"}').delay_seconds == 0


def test_operation_limits_a_fault_to_that_operations_requests():
    faults = FaultInjector()
    faults.set({"service": "s3", "hang_seconds": 30, "operation": "DELETE"})
    assert faults.plan("s3", b"", "DELETE").delay_seconds == 30
    assert faults.plan("s3", b"", "PUT").delay_seconds == 0


def test_outcome_of_a_request_from_before_a_reset_is_not_counted():
    counters = Counters()
    hanging = counters.request("comprehend", "DetectSentiment", "AKIA1")
    counters.clear()
    counters.outcome(hanging, items=1)
    assert counters.snapshot() == {}
    counters.outcome(counters.request("comprehend", "DetectSentiment", "AKIA1"), items=2)
    assert counters.snapshot()["comprehend"]["DetectSentiment"]["batch_sizes"] == [2]
