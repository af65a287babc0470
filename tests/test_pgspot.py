"""pgspot (a static checker of extension scripts for search_path and
privilege pitfalls) finds nothing in the install and update scripts beyond the findings accepted below, each with its reason."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(str(path.relative_to(ROOT)) for path in [*ROOT.glob("aws_*.sql"), *ROOT.glob("extension/*.sql")])
ACCEPTED = {
    # pgspot cannot read Python. The bodies' own SQL (settings.py, wait.py) is
    # schema-qualified, and each function runs with search_path = pg_catalog,
    # pg_temp; tests/test_search_path.py shows planted look-alikes unused.
    "Unknown function language: plpython3u",
    # CREATE OR REPLACE in an update script: PostgreSQL refuses to replace a
    # function that is not already a member of the extension being updated.
    "PS002: Unsafe function creation: aws_comprehend.materialize_sentiment(table_name regclass,text_column name,"
    "language_code varchar,sentiment_column name,confidence_column name,batch_size integer)",
    "PS002: Unsafe function creation: aws_bedrock.materialize_embeddings(table_name regclass,input_column name,"
    "embedding_column name,model_id varchar,json_key text,batch_size integer,max_concurrency integer)",
    "PS002: Unsafe function creation: aws_commons.create_aws_credentials(access_key text,secret_key text,"
    "session_token text)",
    # aws_s3's query and table name resolve in the caller's search_path, as
    # RDS's do; the bodies' own SQL is schema-qualified (aws_s3--1.0.sql).
    "PS005: Function without explicit search_path: aws_s3.query_export_to_s3(query text,bucket text,file_path text,"
    "region text,options text,kms_key text,OUT rows_uploaded bigint,OUT files_uploaded bigint,"
    "OUT bytes_uploaded bigint)",
    "PS005: Function without explicit search_path: aws_s3.table_import_from_s3(table_name text,column_list text,"
    "options text,bucket text,file_path text,region text,access_key text,secret_key text,session_token text)",
}


def findings(output):
    """pgspot's finding lines, without their line number: neither a file
    header nor a summary."""
    return [re.sub(r" at line \d+$", "", line) for line in output.splitlines()
            if line.strip() and not line.endswith(".sql: ") and "Errors:" not in line]


def test_pgspot_finds_nothing_unexplained():
    pgspot = Path(sys.executable).with_name("pgspot")
    run = subprocess.run([str(pgspot), *SCRIPTS], cwd=ROOT, capture_output=True, text=True)
    found = findings(run.stdout)
    assert "TOTAL:" in run.stdout, run.stderr
    assert found, "pgspot printed no findings at all: is the output format still the one parsed here?"
    assert [line for line in found if line not in ACCEPTED] == []
