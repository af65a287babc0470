"""The pg_regress suites (make installcheck; tests/regress) against the test
cluster: batch mode's plans and EXPLAIN output, compared with the expected
output."""
import os
import subprocess

from tests.conftest import ROOT


def test_make_installcheck(cluster):
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": "postgres"}
    done = subprocess.run(["make", "--silent", "installcheck", f"PG_CONFIG={cluster.bindir / 'pg_config'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    diffs = ROOT / "tests" / "regress" / "regression.diffs"
    assert done.returncode == 0, done.stdout + done.stderr + (diffs.read_text() if diffs.exists() else "")
    assert "All 1 tests passed." in done.stdout
