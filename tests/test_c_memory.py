"""The C entry points under valgrind's memcheck: a single-user backend of a
throwaway cluster runs aws_sagemaker._csv_rows, invoke_endpoint and
batch_invoke_endpoint (against the emulator) with NULLs, arrays, composites,
98 arguments and refused inputs; no error valgrind reports may have a frame
in aws_ml.so. PostgreSQL is not built for valgrind here, so palloc chunks are
not checked one by one: this catches uninitialised memory and accesses
outside malloc'd blocks, not every overrun inside a memory context."""
import csv
import io
import re

import pytest

from tests.conftest import new_cluster

pytestmark = pytest.mark.slow  # valgrind

NINETY_EIGHT = ", ".join(str(i) if i % 3 else "NULL::text" for i in range(98))
QUERIES = [
    "CREATE EXTENSION aws_ml CASCADE",
    "SELECT aws_sagemaker._csv_rows(ARRAY[ROW(1, NULL::text, ARRAY['a,b', NULL], 'q\"q'), NULL, "
    "ROW(2, 'x', '{}'::text[], '')])",
    "SELECT aws_sagemaker._csv_rows(ARRAY['x\"y', NULL, '', repeat('z', 10000)])",
    "SELECT aws_sagemaker._csv_rows('{}'::int[])",
    "SELECT aws_sagemaker._csv_rows('{{1,2},{3,4}}'::int[])",
    "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1, NULL::int, 'a,b'::text, "
    "ARRAY[1, NULL, 3], ROW(1, 'x'), now()::date)",
    f"SELECT aws_sagemaker.invoke_endpoint('echo-row-count', 1, {NINETY_EIGHT})",
    "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, VARIADIC '{}'::int[])",
    "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, ARRAY[[1, 2], [3, 4]])",
    "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', 2, "
    "ARRAY[ROW(1, ARRAY[1.5, NULL], 'x y'), NULL, ROW(NULL, NULL, NULL)])",
    "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, NULL::int[])",
]


def memcheck_errors(log):
    """valgrind's error reports, one string each."""
    return [block for block in re.split(r"==\d+== \n", log) if re.search(r"==\d+== \S", block)]


@pytest.fixture(scope="module")
def memcheck(emulator):
    """(the backend's output, valgrind's log, the bodies the emulator got)."""
    emulator.reset()
    server = new_cluster(emulator).init()
    try:
        log_pattern = server.dir / "valgrind.%p.log"
        output = server.single_user(
            "".join(query + ";\n\n" for query in QUERIES),
            wrapper=["valgrind", "--quiet", "--error-limit=no", "--num-callers=40",
                     "--track-origins=yes", f"--log-file={log_pattern}"],
            timeout=120)
        logs = list(server.dir.glob("valgrind.*.log"))
        assert logs, f"valgrind wrote no log: {output[-2000:]}"
        log = "".join(path.read_text(errors="replace") for path in logs)
        yield output, log, emulator.sagemaker_bodies()
    finally:
        server.stop()


def test_the_queries_ran(memcheck):
    output, _, bodies = memcheck
    assert "ERROR:  aws_ml: a model input array must be one-dimensional" in output
    assert "ERROR:  aws_ml: a model input row has no fields" in output
    assert "ERROR:  aws_ml: model_inputs must be a one-dimensional array" in output
    row = io.StringIO()
    csv.writer(row, lineterminator="\n").writerow(["" if i % 3 == 0 else str(i) for i in range(98)])
    assert row.getvalue() in bodies
    assert any(body.startswith("1,,\"a,b\",1,,3,\"(1,x)\",") for body in bodies)
    assert "1,1.5,,x y\n,,\n" in bodies  # the batch: its NULL element not sent


def test_no_memory_error_in_aws_ml(memcheck):
    _, log, _ = memcheck
    ours = [error for error in memcheck_errors(log) if "aws_ml.so" in error]
    assert ours == [], "\n\n".join(ours)
