"""aws_ml 2.0 installed fresh and aws_ml 1.0 updated to 2.0 leave the same
catalog: everything a user or a later upgrade script can observe."""
import json

import psycopg

EXTENSIONS = "('aws_ml', 'aws_commons')"

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


def test_fresh_install_and_update_from_1_0_leave_the_same_catalog(cluster, fresh_database):
    fresh = fresh_database("CREATE EXTENSION aws_ml CASCADE")
    updated = fresh_database("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE")
    with psycopg.connect(cluster.conninfo(updated), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'aws_bedrock'").fetchone() == (0,)
        conn.execute("ALTER EXTENSION aws_ml UPDATE TO '2.0'")

    want, got = catalog(cluster, fresh), catalog(cluster, updated)
    for name in CATALOG:
        assert got[name] == want[name], name

    bedrock = {row[1] for row in want["functions"] if row[0] == "aws_bedrock"}
    assert bedrock == {"invoke_model", "invoke_model_get_embeddings",
                       "batch_invoke_model", "batch_invoke_model_get_embeddings", "materialize_embeddings",
                       "_materialize_embeddings_shards",
                       "_invoke_model_rows", "_invoke_model_get_embeddings_rows"}
    assert ("aws_ml", "schema aws_bedrock") in want["members"]
    assert ("aws_ml", "2.0") in [row[:2] for row in want["extensions"]]


def test_updated_install_calls_the_model(cluster, fresh_database, aws_client):
    """The functions the update script made work, not just exist."""
    body = '{"inputText": "upgraded"}'
    name = fresh_database("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE")
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        conn.execute("ALTER EXTENSION aws_ml UPDATE TO '2.0'")
        embedding = conn.execute(
            "SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', 'application/json', "
            "'embedding', %s)", (body,)).fetchone()[0]
    answer = aws_client("bedrock-runtime").invoke_model(
        modelId="amazon.titan-embed-text-v1", contentType="application/json", accept="application/json", body=body)
    assert embedding == json.loads(answer["body"].read())["embedding"]
