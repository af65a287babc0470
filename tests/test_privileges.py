"""Who may call the functions: nobody by default, members of aws_ml (and
aws_s3), who cannot hand them on, and tenants a superuser granted directly,
whom REVOKE USAGE shuts out again."""
import psycopg
import pytest

CALL = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"


def denied(conn, sql=CALL):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)


def test_login_role_without_grant_is_denied_then_granted_through_aws_ml(connect, db, login_role):
    user = login_role()
    denied(connect(user))
    db.execute(f"GRANT aws_ml TO {user}")
    assert connect(user).execute(CALL).fetchone() == ("POSITIVE",)
    assert connect(user).execute(
        "SELECT count(*) FROM aws_comprehend.batch_detect_sentiment(ARRAY['good'], 'en')").fetchone() == (1,)
    db.execute(f"REVOKE aws_ml FROM {user}")
    denied(connect(user))


GRANTS = {
    "aws_ml": ("aws_comprehend", "aws_bedrock.invoke_model(varchar, text, text, text)",
               "SELECT model_output FROM aws_bedrock.invoke_model('amazon.titan-text-lite-v1', 'application/json', "
               "'application/json', '{\"inputText\": \"hi\"}')"),
    "aws_s3": ("aws_s3", "aws_s3.query_export_to_s3(text, aws_commons._s3_uri_1, text, text)",
               "SELECT * FROM aws_s3.query_export_to_s3('select current_user', "
               "ROW('victim-bucket', 'planted.csv', 'us-east-1'))"),
}


@pytest.mark.parametrize("role", GRANTS)
def test_a_member_cannot_extend_the_functions_to_anyone(cluster, login_role, fresh_database, role):
    """The issue's attack: a member grants a function to PUBLIC and to a
    tenant (with grant option). Nothing is granted, and a role never granted
    anything is refused before any request."""
    schema, function, call = GRANTS[role]
    name = fresh_database("CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3")
    member, tenant, stranger = login_role(), login_role(), login_role()
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as admin:
        admin.execute(f"GRANT {role} TO {member}")
    with psycopg.connect(cluster.conninfo(name, member), autocommit=True) as conn:
        warnings = []
        conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
        for grantee in ("PUBLIC", tenant, f"{tenant} WITH GRANT OPTION"):
            conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {grantee}")
            conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {grantee}")
            conn.execute(f"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {schema} TO {grantee}")
        assert warnings and all(w.startswith("no privileges were granted") for w in warnings), warnings
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as admin:
        for grantee in ("public", tenant):
            assert admin.execute("SELECT has_schema_privilege(%s, %s, 'USAGE'), "
                                 "has_function_privilege(%s, %s, 'EXECUTE')",
                                 (grantee, schema, grantee, function)).fetchone() == (False, False), grantee
    for user in (tenant, stranger):
        with psycopg.connect(cluster.conninfo(name, user), autocommit=True) as conn:
            denied(conn, call)


def test_revoke_usage_shuts_a_tenant_out(connect, db, login_role):
    tenant = login_role()
    db.execute(f"GRANT USAGE ON SCHEMA aws_comprehend TO {tenant}")
    db.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_comprehend TO {tenant}")
    assert connect(tenant).execute(CALL).fetchone() == ("POSITIVE",)
    db.execute(f"REVOKE USAGE ON SCHEMA aws_comprehend FROM {tenant}")
    denied(connect(tenant))
