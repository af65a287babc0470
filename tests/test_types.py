"""mypy over the package (pyproject.toml's [tool.mypy]): the annotations it
has hold, every function body is checked, and the modules listed there are
annotated throughout."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error_in_the_package():
    checked = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues found in" in checked.stdout
