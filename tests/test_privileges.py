"""Who may call the functions: nobody by default, members of aws_ml, and
tenants granted directly, whom REVOKE USAGE shuts out again."""
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


def test_members_of_aws_ml_can_grant_execute_to_others(connect, db, login_role):
    admin, tenant = login_role(), login_role()
    db.execute(f"GRANT aws_ml TO {admin}")
    denied(connect(tenant))
    connect(admin).execute(
        f"GRANT USAGE ON SCHEMA aws_comprehend TO {tenant}; "
        f"GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) TO {tenant}")
    assert connect(tenant).execute(CALL).fetchone() == ("POSITIVE",)


def test_revoke_usage_shuts_a_tenant_out(connect, db, login_role):
    tenant = login_role()
    db.execute(f"GRANT USAGE ON SCHEMA aws_comprehend TO {tenant}")
    db.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_comprehend TO {tenant}")
    assert connect(tenant).execute(CALL).fetchone() == ("POSITIVE",)
    db.execute(f"REVOKE USAGE ON SCHEMA aws_comprehend FROM {tenant}")
    denied(connect(tenant))
