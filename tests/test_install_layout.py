"""Where `make install` puts things and how the server finds them, in copies
of the PostgreSQL installation under other prefixes: the same catalog under
another libdir (as after pg_upgrade), an update across two package versions,
installs under running sessions, and `make uninstall`."""
import ast
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.cluster import pg_bindir
from tests.conftest import new_cluster, wait_until

pytestmark = pytest.mark.slow  # copies of the installation, make install into them

ROOT = Path(__file__).resolve().parent.parent
CALL = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"
EMBED = ("SELECT array_length(aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
         "'application/json', 'embedding', '{\"inputText\": \"hi\"}'), 1)")
# The files of the aws_ml package a session imported (a superuser may run plpython3u).
IMPORTED_FROM = """DO $$
import sys
plpy.notice(sorted({m.__file__.rsplit("/aws_ml/", 1)[0] for n, m in sys.modules.items()
                    if n == "aws_ml" or n.startswith("aws_ml.")}))
$$ LANGUAGE plpython3u"""


def pg_config(name, executable=None):
    executable = executable or os.environ.get("PG_CONFIG", "pg_config")
    return subprocess.check_output([executable, f"--{name}"], text=True).strip()


def make(*targets, source=ROOT, **variables):
    """make in source; an install takes the pinned packages of the install the
    suite runs on (same pins) instead of downloading them again."""
    variables.setdefault("PYTHON_DEPENDENCIES_FROM", Path(pg_config("pkglibdir")) / "aws_ml-python" / "0.1.0")
    subprocess.run(["make", "--silent", "-C", str(source), *targets,
                    *(f"{name}={value}" for name, value in variables.items())],
                   check=True, capture_output=True, text=True)


def files_under(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir())


@pytest.fixture
def prefix():
    """A copy of the server's PostgreSQL installation under another prefix,
    without aws_ml and aws_s3, that the postgres OS user can read; (its root, its
    bindir, its pkglibdir)."""
    root = Path(tempfile.mkdtemp(prefix="aws_ml_prefix_"))
    for name in ("bindir", "pkglibdir", "sharedir"):
        source = Path(pg_config(name))
        shutil.copytree(source, root / source.relative_to("/"), symlinks=True)
    libdir = root / Path(pg_config("pkglibdir")).relative_to("/")
    extensions = root / Path(pg_config("sharedir")).relative_to("/") / "extension"
    for installed in [libdir / "plugins" / "aws_ml.so", libdir / "aws_ml-python", *libdir.glob("bitcode/aws_ml*"),
                      *extensions.glob("aws_ml*"), *extensions.glob("aws_s3*"), *extensions.glob("aws_commons*")]:
        shutil.rmtree(installed) if installed.is_dir() and not installed.is_symlink() else installed.unlink()
    root.chmod(0o755)
    yield root, root / pg_bindir().relative_to("/"), libdir
    shutil.rmtree(root)


def imported_from(conn):
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    conn.execute(IMPORTED_FROM)
    return eval(notices[-1])  # a list of str


def test_a_catalog_moved_to_another_libdir_runs_the_package_there(emulator, prefix):
    """Functions created under the server's libdir, then run by a copy of
    PostgreSQL under another prefix: no path is in the catalog."""
    root, bindir, libdir = prefix
    make("install", DESTDIR=root)
    server = new_cluster(emulator).start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
            assert conn.execute(CALL).fetchone() == ("POSITIVE",)
            assert conn.execute("SELECT count(*) FROM pg_proc WHERE prosrc LIKE '%/%lib%'").fetchone() == (0,)
        server.move_to(bindir)
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            assert conn.execute(CALL).fetchone() == ("POSITIVE",)
            [package] = imported_from(conn)
            assert package.startswith(str(libdir / "aws_ml-python" / "0.1.0."))
    finally:
        server.stop()


@pytest.fixture
def next_version(tmp_path):
    """The source tree with its package version raised to 9.9.9."""
    source = tmp_path / "next"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "*.o", "*.so", "*.bc", "build",
                                                                 "__pycache__", ".hypothesis"))
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "9.9.9"', 1))
    return source


@pytest.fixture
def installed_in_prefix(emulator, prefix):
    """aws_ml installed into the prefix, and a cluster running from it; the
    prefix and a connection's opener."""
    root, bindir, _ = prefix
    pristine = files_under(root)
    make("install", DESTDIR=root)
    server = new_cluster(emulator)
    server.bindir = bindir
    server.start()
    yield prefix, pristine, lambda: psycopg.connect(server.conninfo(), autocommit=True)
    server.stop()


def test_an_update_across_package_versions_under_a_running_session(installed_in_prefix, next_version):
    """1.0 created with package 0.1.0; package 9.9.9 installed while a session
    runs; ALTER EXTENSION ... UPDATE. New sessions run 9.9.9 for every body,
    the running one keeps 0.1.0, also for the parts it imports afterwards
    (aws_ml.bedrock, for a 2.0 function). Then make uninstall removes every
    file both installs put down."""
    (root, _, libdir), pristine, connect = installed_in_prefix
    with connect() as running:
        running.execute("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE")
        assert running.execute(CALL).fetchone() == ("POSITIVE",)
        make("install", source=next_version, DESTDIR=root)
        with connect() as new:
            new.execute("ALTER EXTENSION aws_ml UPDATE")
            assert new.execute(CALL).fetchone() == ("POSITIVE",)
            assert new.execute(EMBED).fetchone() == (1536,)
            [package] = imported_from(new)
            assert package.startswith(str(libdir / "aws_ml-python" / "9.9.9."))
        assert running.execute(EMBED).fetchone() == (1536,)
        [package] = imported_from(running)
        assert package.startswith(str(libdir / "aws_ml-python" / "0.1.0."))
    make("uninstall", DESTDIR=root)
    make("uninstall", source=next_version, DESTDIR=root)
    assert files_under(root) == pristine


def test_a_session_keeps_its_install_when_make_install_runs_again(installed_in_prefix):
    """Two installs of the same version: the link switches, the session that
    started before keeps the directory it resolved, a new one takes the new."""
    (root, _, libdir), _, connect = installed_in_prefix
    with connect() as running:
        running.execute("CREATE EXTENSION aws_ml CASCADE")
        assert running.execute(CALL).fetchone() == ("POSITIVE",)
        [before] = imported_from(running)
        make("install", DESTDIR=root)
        assert running.execute(EMBED).fetchone() == (1536,)
        assert imported_from(running) == [before]
        with connect() as new:
            assert new.execute(CALL).fetchone() == ("POSITIVE",)
            [after] = imported_from(new)
    assert after != before
    assert Path(before).exists() and Path(after) == (libdir / "aws_ml-python" / "0.1.0").resolve()


def test_make_install_keeps_every_install_a_session_still_holds(installed_in_prefix):
    """Three installs under one session: it keeps importing from the first,
    lazily too (aws_ml.bedrock), because make install keeps the installs that
    a backend holds open besides the previous one; a fourth, once the session
    has ended, removes the first."""
    (root, _, libdir), _, connect = installed_in_prefix
    base = libdir / "aws_ml-python"
    with connect() as running:
        running.execute("CREATE EXTENSION aws_ml CASCADE")
        assert running.execute(CALL).fetchone() == ("POSITIVE",)
        [first] = imported_from(running)
        pid = running.info.backend_pid
        make("install", DESTDIR=root)
        make("install", DESTDIR=root)
        assert running.execute(EMBED).fetchone() == (1536,)
        assert imported_from(running) == [first]
        installs = {path for path in base.iterdir() if not path.is_symlink()}
        assert len(installs) == 3 and Path(first) in installs
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the session's backend to exit")
    make("install", DESTDIR=root)
    remaining = {path for path in base.iterdir() if not path.is_symlink()}
    assert len(remaining) == 2 and Path(first) not in remaining


def test_the_package_and_its_install_need_no_newer_python_than_pyproject_says():
    """plpython3u runs the distribution's Python, which may be older than the
    one developing the project: pyproject.toml's requires-python holds for
    the package's syntax and for the install script."""
    minimum = re.search(r'^requires-python = ">=3\.(\d+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    feature_version = (3, int(minimum.group(1)))
    for module in sorted((ROOT / "plpython" / "aws_ml").glob("*.py")):
        ast.parse(module.read_text(), filename=str(module), feature_version=feature_version)
    installer = (ROOT / "scripts" / "install-python-package").read_text()
    assert "tomllib" not in installer  # Python 3.11's: the pins are read with sed
