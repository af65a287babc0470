"""The suite stays green under load and has a fast part: CI runs Hypothesis
derandomized, `slow` is a registered marker that scripts/test --fast leaves
out, and no test waits a guessed time where it can wait for a state."""
import re

from hypothesis import settings

from tests.conftest import ROOT

TESTS = sorted(path for path in (ROOT / "tests").rglob("*.py") if path.name != "test_suite.py")


def test_ci_runs_hypothesis_derandomized_without_deadlines():
    assert "--hypothesis-profile=ci" in (ROOT / ".ci" / "run").read_text()
    profile = settings.get_profile("ci")
    assert profile.derandomize and profile.deadline is None


def test_fast_leaves_out_the_slow_marker():
    assert re.search(r'^    "slow: ', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert 'set -- -m "not slow" "$@"' in (ROOT / "scripts" / "test").read_text()
    assert any("pytest.mark.slow" in path.read_text() for path in TESTS)


def test_no_test_stops_a_statement_after_a_guessed_time():
    """threading.Timer stops a statement after so many seconds, which a
    loaded machine may not have reached; conftest.stop_when waits for a
    state. A sleep is a wait for the absence of something, and says so."""
    for path in TESTS:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            assert "Timer(" not in line, f"{path.name}:{number}"
            if "time.sleep(" in line:
                polls = any(re.match(r"\s*while ", before) for before in lines[max(0, number - 7):number - 1])
                assert polls or "# absence:" in line, f"{path.name}:{number}: {line.strip()}"
