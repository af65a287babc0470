"""scripts/quickstart end to end: every example of the Aurora guide runs and
shows a plausible result, the SageMaker training loop (export, training,
batch scoring, import) its exact one, and what it started is stopped (or,
with --keep, left running and reachable as it says)."""
import datetime
import re
import subprocess
from collections import Counter

import psycopg
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # the quick-start end to end

TIMEOUT_SECONDS = 120
EPOCH = datetime.date(1970, 1, 1)


def training_events():
    """(id, event_type, event_day, category) of the rows the quick start's
    events table gets, as its INSERT and UPDATE make them."""
    events = []
    for n in range(1, 151):
        event_type, event_day = n % 3 + 1, datetime.date(2024, 1, 1) + datetime.timedelta(days=n * 7 % 364)
        category = 2 if event_type == 3 else 1 if event_day >= datetime.date(2024, 7, 1) else 0
        events.append((n, event_type, event_day, category))
    return events


def csv_bytes(rows):
    return sum(len(",".join(str(value) for value in row) + "\n") for row in rows)


def run_quickstart(*args):
    done = subprocess.run([str(ROOT / "scripts/quickstart"), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


def sections(output):
    """{example title: its output}, from the '== N. title' headings."""
    parts = re.split(r"^== \d+\. (.+)$", output, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def table_rows(text):
    """The rows of every psql table in text, as lists of stripped cells."""
    rows, in_table = [], False
    for line in text.splitlines():
        if re.match(r"^-+(\+-+)*$", line):
            in_table = True
        elif re.match(r"^\(\d+ rows?\)$", line):
            in_table = False
        elif in_table:
            rows.append([cell.strip() for cell in line.split("|")])
    return rows


@pytest.fixture(scope="module")
def output():
    return run_quickstart()


@pytest.fixture(scope="module")
def examples(output):
    return sections(output)


def test_every_example_runs_in_order(examples):
    assert list(examples) == [
        "Install", "Comprehend: the support table", "Batch mode", "Comprehend: materialized sentiment",
        "SageMaker: classify_event (two inputs)", "SageMaker: classify_event with a batch size",
        "SageMaker: an array as input", "SageMaker: several outputs",
        "S3: export a training table", "SageMaker: train a model on the export", "SageMaker: batch scoring into S3",
        "S3: import the scores",
        "Bedrock: invoke_model", "Bedrock: an inference profile", "Bedrock: invoke_model_get_embeddings",
        "Monitoring"]
    for text in examples.values():
        assert re.match(r"\n-- \S", text), "each example starts with its one-line explanation"


def test_install(output, examples):
    assert "\nCREATE EXTENSION\n" in examples["Install"]
    # psql's notices go to stderr, which a pipe does not keep in order with stdout
    assert 'NOTICE:  installing required extension "aws_commons"' in output


def test_support_sentiment(examples):
    rows = table_rows(examples["Comprehend: the support table"])
    assert len(rows) == 10
    by_feedback = {feedback: (sentiment, float(confidence)) for feedback, sentiment, confidence in rows}
    assert by_feedback["Thank you for the excellent customer support!"][0] == "POSITIVE"
    assert by_feedback["My problem was never resolved!"][0] == "NEGATIVE"
    confidences = [float(confidence) for _, _, confidence in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)


def test_batch_mode_explained(examples):
    text = examples["Batch mode"]
    assert "Custom Scan (AwsMlBatch) (actual time=" in text
    assert re.search(r"Batch Processing: num batches=1 avg/min/max batch size=10\.000/10\.000/10\.000 "
                     r"avg/min/max batch call time=[0-9.]+/[0-9.]+/[0-9.]+\n", text), text


def test_clinician_notes_materialized(examples):
    text = examples["Comprehend: materialized sentiment"]
    assert "\nUPDATE 2\n" in text
    rows = {row[0]: row[2:] for row in table_rows(text)}
    assert rows["1"][0] == "POSITIVE" and rows["2"][0] == "NEGATIVE"
    assert rows["3"] == ["", ""] and rows["4"] == ["", ""], "NULL and blank notes are not scored"
    assert rows["5"] == ["NEUTRAL", "0.9"], "a scored note is left alone"


def test_sagemaker_functions(examples):
    assert table_rows(examples["SageMaker: classify_event (two inputs)"]) == [["0", "1", "2"]]
    assert table_rows(examples["SageMaker: classify_event with a batch size"]) == [["2", "1"]]
    [[baseline, estimate]] = table_rows(examples["SageMaker: an array as input"])
    # the built-in model: 1.5 x1 - 2 x2 + 0.5 x3 + 3 x4 + 10, fitted to noisy data
    assert float(baseline) == pytest.approx(10, abs=0.2)
    assert float(estimate) == pytest.approx(1.5 + 2 + 0.25 + 6 + 10, abs=0.5)
    forecasts = {company: (float(ret), float(bankruptcy))
                 for company, ret, bankruptcy in table_rows(examples["SageMaker: several outputs"])}
    assert set(forecasts) == {"Acme", "Globex"}
    assert forecasts["Acme"][0] > forecasts["Globex"][0]
    assert forecasts["Acme"][1] < forecasts["Globex"][1]
    assert all(0 <= bankruptcy <= 1 for _, bankruptcy in forecasts.values())


def test_training_table_exported_as_the_built_in_xgboost_reads_it(examples):
    text = examples["S3: export a training table"]
    assert "\nINSERT 0 150\n" in text and "\nUPDATE 150\n" in text
    training_rows = [(category, event_type, (event_day - EPOCH).days)
                     for _, event_type, event_day, category in training_events()]
    assert table_rows(text) == [["150", "1", str(csv_bytes(training_rows))]]


def test_trained_model_serves_classify_event(examples):
    text = examples["SageMaker: train a model on the export"]
    assert ("\n-- Training job: XGBoost on s3://quickstart-ml/events/train.csv (150 rows, 2 features), "
            "objective=multi:softmax num_class=3 num_round=20 -> endpoint sagemaker_model_endpoint_name\n") in text
    assert table_rows(text) == [["0", "1", "2"]]


def test_batch_scoring_exports_every_row_in_growing_batches(examples):
    """Batches of 25, 50 and 75 rows, a request each."""
    scores = [(event_id, category) for event_id, _, _, category in training_events()]
    assert table_rows(examples["SageMaker: batch scoring into S3"]) == [
        ["150", "1", str(csv_bytes(scores))],
        ["sagemaker", "InvokeEndpoint", "150", "3"]]


def test_imported_scores_are_classify_event_answers(examples):
    text = examples["S3: import the scores"]
    scores_bytes = csv_bytes((event_id, category) for event_id, _, _, category in training_events())
    rows = table_rows(text)
    assert rows[0] == [f'150 rows imported into relation "event_scores" from file events/scores.csv '
                       f'of {scores_bytes} bytes']
    # ids 25 to 30: every category, and type 1 and 2 on either side of July 1st
    assert rows[1:7] == [[str(event_id), str(event_type), event_day.isoformat(), str(category), str(category)]
                         for event_id, event_type, event_day, category in training_events()[24:30]]
    labelled = Counter(category for _, _, _, category in training_events())
    assert rows[7:] == [[str(category), str(category), str(labelled[category])] for category in (0, 1, 2)]


def test_bedrock(examples):
    assert '"completion":' in examples["Bedrock: invoke_model"]
    [[answer]] = table_rows(examples["Bedrock: an inference profile"])
    assert answer.strip()
    [[embedding]] = table_rows(examples["Bedrock: invoke_model_get_embeddings"])
    numbers = [float(n) for n in embedding.strip("{}").split(",")]
    assert len(numbers) == 1536 and any(numbers)


def test_monitoring_counts_every_call(examples):
    calls = {(schema, function): int(n) for _, schema, function, n, _, _ in table_rows(examples["Monitoring"])[1:]}
    # 10 support rows twice (the query, then EXPLAIN ANALYZE), then 2 notes with
    # 2 calls each (answered by one document each), counted as row by row
    assert calls[("aws_comprehend", "detect_sentiment")] == 24
    # then the training loop's 3 single calls, its export of 150 rows, and the 6 imported rows it shows
    assert calls[("aws_sagemaker", "invoke_endpoint")] == 3 + 2 + 2 + 2 + 3 + 150 + 6
    assert calls[("aws_bedrock", "invoke_model")] == 2
    assert calls[("aws_bedrock", "invoke_model_get_embeddings")] == 1
    assert calls[("aws_s3", "query_export_to_s3")] == 2
    assert calls[("aws_s3", "table_import_from_s3")] == 1


def test_stops_what_it_started(output):
    assert output.rstrip().endswith("Stopped the cluster and the emulator (scripts/quickstart --keep leaves them running).")


def test_keep_leaves_a_cluster_to_connect_to():
    output = run_quickstart("--keep")
    conninfo = re.search(r'^    psql "(.+)"$', output, flags=re.MULTILINE).group(1)
    stop_commands = output.split("Stop them with:\n", 1)[1].strip().splitlines()
    try:
        with psycopg.connect(conninfo) as conn:
            count = conn.execute("SELECT count(*) FROM support WHERE (aws_comprehend.detect_sentiment(feedback, 'en'))"
                                 ".sentiment = 'POSITIVE'").fetchone()[0]
            agreement = conn.execute("SELECT s.category = classify_event(event_type, event_day), count(*) "
                                     "FROM events JOIN event_scores s USING (id) GROUP BY 1").fetchall()
        assert count >= 2, "the emulator still answers"
        assert agreement == [(True, 150)], "every imported score is what the trained endpoint answers"
    finally:
        for command in stop_commands:
            subprocess.run(command, shell=True, check=True)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(conninfo, connect_timeout=2)
