"""Every ```sql block of README.md and docs/*.md runs against the emulator, so
that the documentation cannot drift from the code. Each file's blocks run in
order, in one psql session, in a fresh database with aws_ml installed; a
block preceded by <!-- not run: reason --> is skipped and listed."""
import re
import subprocess

import pytest

from tests.conftest import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```sql\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")

# SageMaker endpoints the docs call, served by the emulator: the names stand
# for the reader's own endpoints.
ENDPOINTS = {
    "churn": {"kind": "linear", "coef": [0.1, 0.001, 0.01], "intercept": -20},
}
# S3 buckets the docs use, in the emulator's S3.
BUCKETS = ["my-training-bucket"]


def sql_blocks(path):
    """[(line number, sql, reason not to run or None)] of a Markdown file."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skipped = NOT_RUN.search(before)
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1),
                       skipped.group(1) if skipped else None))
    return blocks


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_sql_fence_is_found(path):
    """An indented or otherwise odd ```sql fence would silently go untested."""
    assert len(sql_blocks(path)) == path.read_text().count("```sql")


NOT_RUN_BLOCKS = [(path, line, reason) for path in DOCUMENTS for line, _, reason in sql_blocks(path) if reason]


def test_not_run_blocks_are_few():
    assert len(NOT_RUN_BLOCKS) <= 3, NOT_RUN_BLOCKS


@pytest.mark.parametrize("path, line, reason", NOT_RUN_BLOCKS,
                         ids=[f"{path.name}:{line}" for path, line, _ in NOT_RUN_BLOCKS])
def test_not_run_block(path, line, reason):
    """Listed among the skips of every run (pytest -ra), with the doc's reason."""
    assert len(reason.split()) >= 3, f"{path.name}:{line}: say why the block is not run"
    pytest.skip(f"{path.relative_to(ROOT)}:{line} not run: {reason}")


# Documents whose SQL needs a Citus cluster: tests/test_citus.py runs it there.
ON_CITUS = [ROOT / "docs" / "scaling.md"]
WITH_SQL = [path for path in DOCUMENTS
            if path not in ON_CITUS and any(reason is None for _, _, reason in sql_blocks(path))]


@pytest.mark.parametrize("path", WITH_SQL, ids=lambda path: str(path.relative_to(ROOT)))
def test_sql_blocks_run(path, cluster, emulator, fresh_database, aws_client):
    emulator.reset()
    for name, model in ENDPOINTS.items():
        emulator.register_endpoint(name, model=model)
    s3 = aws_client("s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    database = fresh_database("CREATE EXTENSION aws_ml CASCADE")
    run_sql_blocks(path, cluster.bindir / "psql", cluster.conninfo(database))


def run_sql_blocks(path, psql, conninfo, prologue=""):
    """Runs the SQL blocks of path in order, after prologue, in one psql
    session; fails at the first error, naming the block."""
    blocks = [(line, sql) for line, sql, reason in sql_blocks(path) if reason is None]
    for line, sql in blocks:
        code = [re.sub(r"--.*", "", text).strip() for text in sql.splitlines()]
        code = [text for text in code if text]
        assert code and code[-1].rstrip().endswith(";"), f"{path.name}:{line}: a block ends its last statement with ;"
    # A marker before each block tells which one failed.
    script = prologue + "".join(f"\\echo '@@ block at line {line}'\n{sql}\n" for line, sql in blocks)
    done = subprocess.run([str(psql), "-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo],
                          input=script, capture_output=True, text=True, timeout=120)
    ran = re.findall(r"^@@ block at line (\d+)$", done.stdout, re.MULTILINE)
    failed_at = f"{path.name}:{ran[-1]}" if ran else path.name
    assert done.returncode == 0, f"{failed_at}: {done.stderr}"
    assert len(ran) == len(blocks)


def test_the_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    for path in DOCUMENTS[1:]:
        assert f"](docs/{path.name})" in readme, f"README.md does not link docs/{path.name}"
