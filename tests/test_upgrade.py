"""aws_ml 2.2 and aws_s3 1.3 installed fresh, and aws_ml 1.0 and aws_s3 1.0
as installed before 2.1 updated to them, leave the same catalog: everything
a user or a later upgrade script can observe."""
import json

import psycopg
import pytest

from tests.conftest import ROOT, counter
from tests.test_docs import sql_blocks

EXTENSIONS = "('aws_ml', 'aws_commons', 'aws_s3')"
SCHEMAS = {"aws_ml": "aws_ml, aws_comprehend, aws_sagemaker, aws_bedrock", "aws_s3": "aws_s3"}

CATALOG = {
    "extensions": f"""
        SELECT e.extname, e.extversion, e.extrelocatable, n.nspname, e.extconfig::text
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname IN {EXTENSIONS} ORDER BY 1""",
    "members": f"""
        SELECT e.extname, pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
        WHERE d.deptype = 'e' AND e.extname IN {EXTENSIONS} ORDER BY 1, 2""",
    "schemas": """
        SELECT nspname, pg_get_userbyid(nspowner), nspacl::text
        FROM pg_namespace WHERE nspname LIKE 'aws\\_%' ORDER BY 1""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
               p.prokind, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proleakproof,
               p.proretset, p.proconfig::text, p.procost, p.prorows, l.lanname, p.prosrc, p.probin,
               pg_get_userbyid(p.proowner), p.proacl::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname LIKE 'aws\\_%' ORDER BY 1, 2, 3""",
    "types": """
        SELECT n.nspname, t.typname, t.typtype, pg_get_userbyid(t.typowner), t.typacl::text,
               (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname LIKE 'aws\\_%' ORDER BY 1, 2""",
    "initial_privileges": """
        SELECT pg_describe_object(classoid, objoid, objsubid), privtype, initprivs::text
        FROM pg_init_privs WHERE pg_describe_object(classoid, objoid, objsubid) ~ 'aws_' ORDER BY 1""",
    "aws_ml_role": """
        SELECT r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
               (SELECT array_agg(pg_get_userbyid(m.roleid) ORDER BY 1) FROM pg_auth_members m
                WHERE m.member = r.oid)::text,
               (SELECT array_agg(pg_get_userbyid(m.member) ORDER BY 1) FROM pg_auth_members m
                WHERE m.roleid = r.oid)::text
        FROM pg_roles r WHERE r.rolname = 'aws_ml'""",
}


def catalog(cluster, dbname):
    with psycopg.connect(cluster.conninfo(dbname), autocommit=True) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in CATALOG.items()}


# docs/operations.md's audit of the grants a member made with the grant option
AUDIT = next(sql for _, sql, _ in sql_blocks(ROOT / "docs" / "operations.md") if "aclexplode" in sql)


def as_installed_before_2_1(conn):
    """What the scripts before aws_ml 2.1 and aws_s3 1.1 granted: EXECUTE and
    USAGE with grant option."""
    for role, schemas in SCHEMAS.items():
        conn.execute(f"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {schemas} TO {role} WITH GRANT OPTION")
        conn.execute(f"GRANT USAGE ON SCHEMA {schemas} TO {role} WITH GRANT OPTION")


def test_fresh_install_and_update_from_1_0_leave_the_same_catalog(cluster, login_role, fresh_database):
    """The update takes the grant option away, and every grant a member made
    with it: the issue's grants to PUBLIC and to a tenant."""
    fresh = fresh_database("CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3")
    updated = fresh_database("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE; CREATE EXTENSION aws_s3 VERSION '1.0'")
    member, tenant = login_role(), login_role()
    with psycopg.connect(cluster.conninfo(updated), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'aws_bedrock'").fetchone() == (0,)
        conn.execute("ALTER EXTENSION aws_ml UPDATE TO '2.0'")
        as_installed_before_2_1(conn)
        conn.execute(f"GRANT aws_ml, aws_s3 TO {member}")
    with psycopg.connect(cluster.conninfo(updated, member), autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA aws_bedrock TO PUBLIC")
        conn.execute("GRANT EXECUTE ON FUNCTION aws_bedrock.invoke_model(varchar, text, text, text) TO PUBLIC")
        conn.execute(f"GRANT USAGE ON SCHEMA aws_comprehend TO {tenant} WITH GRANT OPTION")
        conn.execute(f"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA aws_comprehend TO {tenant} WITH GRANT OPTION")
        conn.execute("GRANT USAGE ON SCHEMA aws_s3 TO PUBLIC")
        conn.execute("GRANT EXECUTE ON ALL ROUTINES IN SCHEMA aws_s3 TO PUBLIC")
    with psycopg.connect(cluster.conninfo(updated, tenant), autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA aws_comprehend TO PUBLIC")
    with psycopg.connect(cluster.conninfo(updated), autocommit=True) as conn:
        assert conn.execute("SELECT has_function_privilege('public', "
                            "'aws_bedrock.invoke_model(varchar, text, text, text)', 'EXECUTE')").fetchone() == (True,)
        audited = conn.execute(AUDIT).fetchall()
        assert {(row[2], row[3]) for row in audited if not row[5]} == {
            ("aws_ml", "PUBLIC"), ("aws_s3", "PUBLIC"), (tenant, "PUBLIC")}
        conn.execute("ALTER EXTENSION aws_ml UPDATE")
        conn.execute("ALTER EXTENSION aws_s3 UPDATE")
        assert conn.execute(AUDIT).fetchall() == []
        conn.execute(f"REVOKE aws_ml, aws_s3 FROM {member}")

    want, got = catalog(cluster, fresh), catalog(cluster, updated)
    for name in CATALOG:
        assert got[name] == want[name], name

    bedrock = {row[1] for row in want["functions"] if row[0] == "aws_bedrock"}
    assert bedrock == {"invoke_model", "invoke_model_get_embeddings",
                       "batch_invoke_model", "batch_invoke_model_get_embeddings", "materialize_embeddings",
                       "_materialize_embeddings_shards",
                       "_invoke_model_rows", "_invoke_model_get_embeddings_rows"}
    assert ("aws_ml", "schema aws_bedrock") in want["members"]
    assert [row[:2] for row in want["extensions"]] == [("aws_commons", "1.1"), ("aws_ml", "2.2"), ("aws_s3", "1.3")]
    grants = " ".join(str(row[-1]) for row in want["functions"] + want["schemas"])
    assert "*" not in grants and "aws_ml=X/" in grants and "aws_s3=X/" in grants


def test_aurora_versions_install_without_grant_option(cluster, fresh_database):
    """CREATE EXTENSION aws_ml VERSION '2.0', as Aurora users write it, and
    VERSION '1.0' install with the scripts of today: no grant option."""
    for version in ("1.0", "2.0"):
        name = fresh_database(f"CREATE EXTENSION aws_ml VERSION '{version}' CASCADE; "
                              "CREATE EXTENSION aws_s3 VERSION '1.0'")
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
            acls = conn.execute("SELECT string_agg(proacl::text, ' ') FROM pg_proc "
                                "WHERE pronamespace::regnamespace::text LIKE 'aws\\_%'").fetchone()[0]
            assert "aws_ml=X/" in acls and "aws_s3=X/" in acls and "*" not in acls, version


def test_updated_install_calls_the_model(cluster, fresh_database, aws_client):
    """The functions the update script made work, not just exist."""
    body = '{"inputText": "upgraded"}'
    name = fresh_database("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE")
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("ALTER EXTENSION aws_ml UPDATE")
        embedding = conn.execute(
            "SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', 'application/json', "
            "'embedding', %s)", (body,)).fetchone()[0]
    answer = aws_client("bedrock-runtime").invoke_model(
        modelId="amazon.titan-embed-text-v1", contentType="application/json", accept="application/json", body=body)
    assert embedding == json.loads(answer["body"].read())["embedding"]


def test_aws_s3_1_0_asks_for_its_update_then_exports_and_imports(cluster, fresh_database, aws_client):
    """aws_s3 1.0's _copy_layout(text) predates the package: its calls fail
    with 55000 naming the update, before any request; after ALTER EXTENSION
    aws_s3 UPDATE an export and an import of its object work, the import's
    options checked as COPY FROM's."""
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="upgraded")
    uri = "aws_commons.create_s3_uri('upgraded', 'rows.csv', 'us-east-1')"
    name = fresh_database("CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3 VERSION '1.0'")
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            conn.execute(f"SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', {uri})")
        assert caught.value.diag.message_primary == \
            "aws_s3: this database's aws_s3 is older than the aws_s3 installed on the server"
        assert caught.value.diag.message_hint.startswith("ALTER EXTENSION aws_s3 UPDATE")
        assert s3.list_objects_v2(Bucket="upgraded").get("KeyCount") == 0
        conn.execute("ALTER EXTENSION aws_s3 UPDATE")
        query = "SELECT n AS a, n * 2 AS b FROM generate_series(1, 3) n"
        assert conn.execute(f"SELECT * FROM aws_s3.query_export_to_s3(%s, {uri}, 'format csv, header true')",
                            (query,)).fetchone() == (3, 1, 16)
        conn.execute("CREATE TABLE imported (a int, b int)")
        with pytest.raises(psycopg.errors.FeatureNotSupported):  # COPY FROM's own check
            conn.execute(f"SELECT aws_s3.table_import_from_s3('imported', '', 'format csv, force_quote *', {uri})")
        conn.execute(f"SELECT aws_s3.table_import_from_s3('imported', '', 'format csv, header match', {uri})")
        assert conn.execute("SELECT * FROM imported ORDER BY a").fetchall() == [(1, 2), (2, 4), (3, 6)]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_aws_s3_before_1_3_asks_for_its_update_before_an_import(cluster, fresh_database, aws_client, emulator,
                                                                version):
    """aws_s3 1.1 lacks _import_target(table_name, column_list), which an
    import calls before its download, and 1.2 has only _import_target(table_name):
    the import fails with 55000 naming the update, with no request; an
    export, which does not call it, works; after ALTER EXTENSION aws_s3
    UPDATE the import works."""
    s3 = aws_client("s3")
    bucket = f"upgraded-from-{version.replace('.', '-')}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="rows.csv", Body=b"1,2\n")
    uri = f"aws_commons.create_s3_uri('{bucket}', 'rows.csv', 'us-east-1')"
    name = fresh_database(f"CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3 VERSION '{version}'")
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE imported (a int, b int)")
        emulator.reset()
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            conn.execute(f"SELECT aws_s3.table_import_from_s3('imported', '', 'format csv', {uri})")
        assert caught.value.diag.message_primary == \
            "aws_s3: this database's aws_s3 is older than the aws_s3 installed on the server"
        assert counter(emulator.counters(), "s3", "GET") == 0
        assert conn.execute(f"SELECT rows_uploaded FROM aws_s3.query_export_to_s3('SELECT 1', "
                            f"aws_commons.create_s3_uri('{bucket}', 'out.csv', 'us-east-1'))").fetchone() == (1,)
        conn.execute("ALTER EXTENSION aws_s3 UPDATE")
        conn.execute(f"SELECT aws_s3.table_import_from_s3('imported', '', 'format csv', {uri})")
        assert conn.execute("SELECT * FROM imported").fetchall() == [(1, 2)]
        assert counter(emulator.counters(), "s3", "GET") == 1
