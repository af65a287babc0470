"""PostgreSQL's own regression suite with the aws_ml module preloaded in
every session (its planner and executor hooks see every plan) fails no test
and crashes nothing that the same run without the module does not."""
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # PostgreSQL's regression suite, about 4 minutes


def test_postgres_regression_suite_with_the_module_preloaded():
    done = subprocess.run([str(ROOT / "scripts" / "postgres-regression")], capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    with_module = [line for line in done.stdout.splitlines() if line.startswith("with the module: ")]
    assert with_module and ", 0 crashes" in with_module[0], done.stdout
