"""Runs the pgTAP suites (tests/pgtap/*.sql) with pg_prove."""
import subprocess
from pathlib import Path

import pytest

SUITES = sorted((Path(__file__).parent / "pgtap").glob("*.sql"))


@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_pgtap_suite(cluster, database, suite):
    result = subprocess.run(
        ["pg_prove", "--host", "127.0.0.1", "--port", str(cluster.port), "--username", "postgres",
         "--dbname", database, str(suite)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All tests successful." in result.stdout
