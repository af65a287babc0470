"""The quick start's second half (scripts/quickstart runs scripts/setup first):
starts the local emulator and a throwaway PostgreSQL cluster, runs the Aurora
user guide's aws_ml examples and its SageMaker training loop (aws_s3 export,
training, batch scoring, import) through psql, one session each, and stops
both unless --keep is given."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import Cluster  # noqa: E402
from tests.reference import (ANALYZE_COMPANY, CLASSIFY_EVENT_2, CLASSIFY_EVENT_4,  # noqa: E402
                             CLINICIAN_NOTES_UPDATE, REGRESSION_MODEL)

DATABASE = "quickstart"
SAGEMAKER_ENDPOINT = "sagemaker_model_endpoint_name"   # the names the guide's functions call
FORECASTS_ENDPOINT = "endpt_name"
REGION = "us-east-1"
BUCKET = "quickstart-ml"
# The emulator takes any credentials; the server process and the quick start sign with these.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAQUICKSTART000001", "AWS_SECRET_ACCESS_KEY": "quickstart-secret"}


@dataclass
class TrainingJob:
    """A SageMaker training job of the built-in XGBoost algorithm on a CSV
    object in S3, whose model then serves the endpoint: on AWS,
    CreateTrainingJob, CreateModel and CreateEndpoint; here one call to the
    emulator."""
    endpoint: str
    s3_uri: str
    hyperparameters: dict   # strings, as SageMaker passes them

    def summary(self, answer):
        settings = " ".join(f"{name}={value}" for name, value in self.hyperparameters.items())
        return (f"-- Training job: XGBoost on {self.s3_uri} ({answer['rows']} rows, {answer['features']} features), "
                f"{settings} -> endpoint {answer['endpoint']}")


@dataclass
class Example:
    title: str
    explanation: str
    sql: str
    # (endpoint name, model) registered in the emulator first; the model is a
    # linear spec or the name of a built-in endpoint whose model to copy
    endpoint: tuple = None
    s3_bucket: str = None             # created in the emulator's S3 first
    training_job: TrainingJob = None  # run first, its summary printed
    wait_for_statistics: bool = False


EXAMPLES = [
    Example(
        "Install",
        "CREATE EXTENSION installs aws_ml 2.0 and its dependency aws_commons, as on Aurora.",
        "CREATE EXTENSION aws_ml CASCADE;"),
    Example(
        "Comprehend: the support table",
        "The guide's sentiment query over customer feedback (the emulator scores with VADER, not Comprehend's model).",
        """CREATE TABLE support (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, feedback text);
INSERT INTO support (feedback) VALUES
    ('Thank you for the excellent customer support!'),
    ('The latest version of this product stinks!'),
    ('Your support team is just awesome! I am blown away.'),
    ('Your product is too complex, but your support is great.'),
    ('Your support tech helped me in fifteen minutes.'),
    ('My problem was never resolved!'),
    ('When will the new version of this product be released?'),
    ('I cannot stand that chatbot.'),
    ('Your support tech talked down to me.'),
    ('It took me way too long to get a real person.');
SELECT feedback, s.sentiment,s.confidence
FROM support,aws_comprehend.detect_sentiment(feedback, 'en') s
ORDER BY s.confidence DESC;"""),
    Example(
        "Batch mode",
        "As on Aurora, the calls of a query go out in batches: the ten rows in one BatchDetectSentiment "
        "request. EXPLAIN ANALYZE prints the Batch Processing line under the batching node.",
        """EXPLAIN (ANALYZE, COSTS OFF)
SELECT feedback, s.sentiment,s.confidence
FROM support,aws_comprehend.detect_sentiment(feedback, 'en') s;"""),
    Example(
        "Comprehend: materialized sentiment",
        "The guide's UPDATE, verbatim: only French notes not yet scored are sent, once per row "
        "(its two equal calls of a row make one).",
        """CREATE TABLE clinician_notes (id int PRIMARY KEY, french_notes text, sentiment varchar, confidence real);
INSERT INTO clinician_notes VALUES
    (1, 'Excellent progrès, le patient est content.', NULL, NULL),
    (2, 'Douleur terrible, nuit horrible.', NULL, NULL),
    (3, NULL, NULL, NULL),
    (4, '   ', NULL, NULL),
    (5, 'Déjà évalué.', 'NEUTRAL', 0.9);
""" + CLINICIAN_NOTES_UPDATE + """
SELECT * FROM clinician_notes ORDER BY id;"""),
    Example(
        "SageMaker: classify_event (two inputs)",
        "The guide's user-defined function, verbatim, over the emulator's 3-class XGBoost classifier "
        "(a date is sent as its text and read as days since 1970).",
        CLASSIFY_EVENT_2 + """
SELECT classify_event(0, DATE '1970-01-01') AS a, classify_event(3, DATE '1970-01-04') AS b,
       classify_event(-3, DATE '1970-01-04') AS c;""",
        (SAGEMAKER_ENDPOINT, "xgboost-classifier")),
    Example(
        "SageMaker: classify_event with a batch size",
        "The guide's second form, verbatim; a stand-in linear model answers the event type, "
        "and a NULL amount goes out as 0.0.",
        CLASSIFY_EVENT_4 + """
SELECT classify_event(2, DATE '2024-05-01', 19.99) AS with_amount,
       classify_event(1, DATE '2024-05-02', NULL, 10) AS null_amount_batch_10;""",
        (SAGEMAKER_ENDPOINT, {"kind": "linear", "coef": [1, 0, 0], "intercept": 0})),
    Example(
        "SageMaker: an array as input",
        "The guide's regression_model, verbatim: one array argument is one CSV field per element "
        "(the emulator's 4-feature linear regression).",
        REGRESSION_MODEL + """
SELECT regression_model(ARRAY[0, 0, 0, 0]) AS baseline, regression_model(ARRAY[1, -1, 0.5, 2]) AS estimate;""",
        (SAGEMAKER_ENDPOINT, "linear-regression")),
    Example(
        "SageMaker: several outputs",
        "The guide's company_forecasts type and analyze_company, verbatim: a two-value answer "
        "casts to the composite type.",
        ANALYZE_COMPANY + """
SELECT c.company, p.*
FROM (VALUES ('Acme', 0.9, 0.1), ('Globex', 0.2, 0.8)) AS c (company, free_cash_flow, debt),
     analyze_company(c.free_cash_flow, c.debt) AS p;""",
        (FORECASTS_ENDPOINT, "company-forecasts")),
    Example(
        "S3: export a training table",
        "The guide's SageMaker workflow starts by exporting training data with aws_s3.query_export_to_s3, "
        f"here into the bucket {BUCKET} (created first): CSV with the label first and no header, as SageMaker's "
        "built-in XGBoost reads it; a date as its days since 1970, the number the endpoint reads a DATE as.",
        f"""CREATE EXTENSION aws_s3;
CREATE TABLE events (id int PRIMARY KEY, event_type int, event_day date, category int);
INSERT INTO events (id, event_type, event_day)
    SELECT n, n % 3 + 1, DATE '2024-01-01' + n * 7 % 364 FROM generate_series(1, 150) n;
UPDATE events SET category = CASE WHEN event_type = 3 THEN 2 WHEN event_day >= '2024-07-01' THEN 1 ELSE 0 END;
SELECT * FROM aws_s3.query_export_to_s3(
    $$SELECT category, event_type, event_day - DATE '1970-01-01' FROM events ORDER BY id$$,
    aws_commons.create_s3_uri('{BUCKET}', 'events/train.csv', '{REGION}'),
    options := 'format csv');""",
        s3_bucket=BUCKET),
    Example(
        "SageMaker: train a model on the export",
        "What a SageMaker training job of the built-in XGBoost does with that object (on AWS: "
        "CreateTrainingJob, CreateModel, CreateEndpoint), the emulator does in one call; the model then serves "
        "the endpoint the guide's classify_event (two inputs) calls. It has learned that type 3 is category 2 "
        "and that the other types change category on July 1st.",
        """SELECT classify_event(1, DATE '2024-06-30') AS june_30, classify_event(1, DATE '2024-07-01') AS july_1,
       classify_event(3, DATE '2024-06-30') AS type_3;""",
        training_job=TrainingJob(
            SAGEMAKER_ENDPOINT, f"s3://{BUCKET}/events/train.csv",
            {"objective": "multi:softmax", "num_class": "3", "num_round": "20"})),
    Example(
        "SageMaker: batch scoring into S3",
        "The guide's classify_event over the whole table, in the query of an export: batch mode sends "
        "the 150 rows in batches of 25, 50 and 75, a request each (aws_ml.stats(): this session's "
        "requests), and the scores land in S3.",
        f"""SELECT * FROM aws_s3.query_export_to_s3(
    'SELECT id, classify_event(event_type, event_day) FROM events ORDER BY id',
    aws_commons.create_s3_uri('{BUCKET}', 'events/scores.csv', '{REGION}'),
    options := 'format csv');
SELECT service, operation, rows, requests FROM aws_ml.stats() WHERE service = 'sagemaker';"""),
    Example(
        "S3: import the scores",
        "aws_s3.table_import_from_s3 loads the scores into a table: each is what classify_event answers "
        "for its row, and every row got the category it was labelled with.",
        f"""CREATE TABLE event_scores (id int PRIMARY KEY, category int);
SELECT aws_s3.table_import_from_s3('event_scores', 'id, category', 'format csv',
    aws_commons.create_s3_uri('{BUCKET}', 'events/scores.csv', '{REGION}'));
SELECT id, event_type, event_day, s.category AS imported, classify_event(event_type, event_day) AS classify_event
FROM events e JOIN event_scores s USING (id) WHERE id BETWEEN 25 AND 30 ORDER BY id;
SELECT e.category AS labelled, s.category AS scored, count(*)
FROM events e JOIN event_scores s USING (id) GROUP BY 1, 2 ORDER BY 1, 2;"""),
    Example(
        "Bedrock: invoke_model",
        "The guide's Claude 2 call, verbatim: the answer's JSON body comes back as text.",
        """SELECT aws_bedrock.invoke_model ( model_id := 'anthropic.claude-v2', content_type:= 'application/json', accept_type := 'application/json', model_input := '{"prompt": "\\n\\nHuman: You are a helpful assistant that answers questions directly and only using the information provided in the context below.\\nDescribe the answer in detail.\\n\\nContext: %s \\n\\nQuestion: %s \\n\\nAssistant:","max_tokens_to_sample":4096,"temperature":0.5,"top_k":250,"top_p":0.5,"stop_sequences":[]}' );"""),
    Example(
        "Bedrock: an inference profile",
        "A current model through a cross-Region inference profile id, as AWS's own Aurora sample calls it "
        "(the Messages API; the emulator answers every Claude model alike).",
        """SELECT aws_bedrock.invoke_model('global.anthropic.claude-sonnet-4-6', 'application/json', 'application/json', '{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "messages": [{"role": "user", "content": "Which PostgreSQL view shows I/O statistics?"}]}')::json -> 'content' -> 0 ->> 'text' AS answer;"""),
    Example(
        "Bedrock: invoke_model_get_embeddings",
        "The guide's Titan embedding, verbatim: 1536 numbers as float8[].",
        """SELECT aws_bedrock.invoke_model_get_embeddings( model_id := 'amazon.titan-embed-text-v1', content_type := 'application/json', json_key := 'embedding', model_input := '{ "inputText": "PostgreSQL I/O monitoring views"}') AS embedding;"""),
    Example(
        "Monitoring",
        "track_functions is 'all' in this server's postgresql.conf (Aurora: the cluster parameter group), "
        "so every aws_ml function called above is counted: in batch mode once a row, and the batch-mode "
        "forms (_detect_sentiment_rows, ...) once a batch.",
        """SHOW track_functions;
SELECT * FROM pg_stat_user_functions WHERE schemaname LIKE 'aws_%';""",
        wait_for_statistics=True),
]


class BackgroundEmulator:
    """The emulator as a detached background server, so that --keep can leave it running."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aws_ml_quickstart_"))
        self.pidfile = self.dir / "emulator.pid"
        self.logfile = self.dir / "emulator.log"
        line = subprocess.run(
            [sys.executable, "-m", "emulator", "--port", "0", "--background",
             "--pidfile", str(self.pidfile), "--logfile", str(self.logfile)],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        self.url = line.rsplit(" ", 1)[1]

    def _control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def create_bucket(self, name):
        s3 = boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=name)

    def run_training_job(self, job):
        """{"endpoint", "rows", "features"} of the trained model's endpoint."""
        return self._control("POST", "sagemaker/training-jobs", {
            "endpoint": job.endpoint, "s3_uri": job.s3_uri, "hyperparameters": job.hyperparameters})

    def register_endpoint(self, name, model):
        if isinstance(model, str):
            model = self._control("GET", f"sagemaker/endpoints/{model}/model")
        self._control("POST", "sagemaker/endpoints", {"name": name, "model": model})

    def stop(self):
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_cluster(emulator_url):
    return Cluster(
        settings={
            "aws_ml.region": REGION,
            "aws_ml.endpoint_url": emulator_url,
            "track_functions": "all",
        },
        environment={**CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"},
    ).start()


def wait_for_sessions_to_end(cluster):
    """A session's function statistics are flushed when it ends: wait for the
    earlier examples' backends to be gone before reading them."""
    with psycopg.connect(cluster.conninfo(DATABASE), autocommit=True) as conn:
        for _ in range(100):
            others = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()[0]
            if others == 0:
                return
            time.sleep(0.05)


def psql(cluster, sql):
    sys.stdout.flush()
    subprocess.run([str(cluster.bindir / "psql"), "-X", "-e", "-v", "ON_ERROR_STOP=1",
                    "-d", cluster.conninfo(DATABASE)], input=sql + "\n", text=True, check=True)


def run_examples(cluster, emulator):
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    for number, example in enumerate(EXAMPLES, 1):
        print(f"\n== {number}. {example.title}\n-- {example.explanation}\n")
        if example.endpoint:
            emulator.register_endpoint(*example.endpoint)
        if example.s3_bucket:
            emulator.create_bucket(example.s3_bucket)
        if example.training_job:
            print(example.training_job.summary(emulator.run_training_job(example.training_job)) + "\n")
        if example.wait_for_statistics:
            wait_for_sessions_to_end(cluster)
        psql(cluster, example.sql)


def main():
    parser = argparse.ArgumentParser(prog="scripts/quickstart", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the cluster and the emulator running")
    args = parser.parse_args()

    emulator = BackgroundEmulator()
    cluster = None
    keep = False
    try:
        cluster = start_cluster(emulator.url)
        run_examples(cluster, emulator)
        keep = args.keep
    except subprocess.CalledProcessError as error:
        sys.exit(f"quickstart: {error}")
    finally:
        if not keep:
            if cluster:
                cluster.stop()
            emulator.stop()
    if keep:
        as_postgres = "runuser -u postgres -- " if os.geteuid() == 0 else ""
        print(f"""
The cluster and the emulator are still running. Connect with:
    psql "{cluster.conninfo(DATABASE)}"
Stop them with:
    {as_postgres}{cluster.bindir}/pg_ctl -D {cluster.data} stop; rm -rf {cluster.dir}
    kill {emulator.pidfile.read_text().strip()}; rm -rf {emulator.dir}""")
    else:
        print("\nStopped the cluster and the emulator (scripts/quickstart --keep leaves them running).")


if __name__ == "__main__":
    main()
