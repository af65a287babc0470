"""Look-alike functions and operators planted at the front of the caller's
search_path are never used by aws_ml: every function pins its own
search_path, and the Python layer's SQL is schema-qualified. The plants record
each call in a table; a control query shows they do catch unpinned code."""
import json

import pytest

PLANTS = """
CREATE SCHEMA planted;
CREATE TABLE planted.calls (what text);
GRANT ALL ON SCHEMA planted TO PUBLIC;
GRANT ALL ON planted.calls TO PUBLIC;
CREATE FUNCTION planted.current_setting(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('current_setting'); SELECT 'http://127.0.0.1:9' $$;
CREATE FUNCTION planted.current_setting(text, boolean) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('current_setting/2'); SELECT 'http://127.0.0.1:9' $$;
CREATE FUNCTION planted.set_config(text, text, boolean) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('set_config'); SELECT $2 $$;
CREATE FUNCTION planted.lower(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('lower'); SELECT $1 $$;
CREATE FUNCTION planted.pg_sleep(float8) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('pg_sleep') $$;
CREATE FUNCTION planted.array_length(anyarray, int) RETURNS int LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('array_length'); SELECT 0 $$;
CREATE FUNCTION planted.eq(varchar, varchar) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('= varchar'); SELECT true $$;
CREATE FUNCTION planted.eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('= text'); SELECT true $$;
CREATE FUNCTION planted.eq(name, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.calls VALUES ('= name'); SELECT true $$;
CREATE OPERATOR planted.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = planted.eq);
CREATE OPERATOR planted.= (LEFTARG = text, RIGHTARG = text, FUNCTION = planted.eq);
CREATE OPERATOR planted.= (LEFTARG = name, RIGHTARG = text, FUNCTION = planted.eq);
"""
TITAN_INPUT = json.dumps({"inputText": "planted"})
CALLS = [
    ("SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')", None),
    ("SELECT count(*) FROM aws_comprehend.batch_detect_sentiment(ARRAY['I love it', 'bad'], 'en')", None),
    ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1, 'a'::varchar, ARRAY['x', 'y'])", None),
    ("SELECT count(*) FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', 2, ARRAY[ROW(1, 'a'::varchar)])",
     None),
    ("SELECT aws_sagemaker._csv_rows(ARRAY['a,b'::varchar, NULL])", None),
    ("SELECT aws_bedrock.invoke_model('amazon.titan-embed-text-v1', 'application/json', NULL, %s)", (TITAN_INPUT,)),
    ("SELECT aws_bedrock.invoke_model_get_embeddings("
     "'amazon.titan-embed-text-v1', 'application/json', 'embedding', %s)", (TITAN_INPUT,)),
    ("SELECT count(*) FROM aws_bedrock.batch_invoke_model('amazon.titan-embed-text-v1', 'application/json', "
     "NULL, ARRAY[%s])", (TITAN_INPUT,)),
    ("SELECT count(*) FROM aws_bedrock.batch_invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
     "'application/json', 'embedding', ARRAY[%s])", (TITAN_INPUT,)),
]


@pytest.fixture
def planted(fresh_database, cluster, login_role, connect):
    """A fresh database with the plants and a member of aws_ml whose
    search_path puts them first, connected before aws_ml loads."""
    name = fresh_database("CREATE EXTENSION aws_ml CASCADE")
    admin = connect(dbname=name)
    admin.execute(PLANTS)
    user = login_role()
    admin.execute(f"GRANT aws_ml TO {user}")
    conn = connect(user, dbname=name)
    conn.execute("SET search_path = planted, pg_catalog, public")
    return admin, conn


def plant_calls(admin):
    return [what for (what,) in admin.execute("SELECT what FROM planted.calls")]


def test_the_plants_catch_unpinned_code(planted):
    admin, conn = planted
    conn.execute("SELECT current_setting('aws_ml.region'), 'a'::varchar = 'b'::varchar")
    assert plant_calls(admin) == ["current_setting", "= varchar"]


def test_aws_ml_never_uses_the_plants(planted, emulator):
    admin, conn = planted
    # clean session: the first call of each loads the module and reads settings
    for sql, params in CALLS:
        assert conn.execute(sql, params).fetchone()[0] is not None, sql
    assert plant_calls(admin) == []
    assert conn.execute("SELECT aws_sagemaker._csv_rows(ARRAY['a,b'::varchar, NULL])").fetchone()[0] == ['"a,b"\n', None]


SPY_DOMAINS = """
CREATE TABLE public.spied (what text);
GRANT ALL ON public.spied TO PUBLIC;
CREATE FUNCTION public.spy(what text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.spied VALUES (what); SELECT true $$;
"""
# Type names the procedures use, planted as domains that run the tenant's function.
SPIED_TYPES = ["tid", "int4", "text", "regclass", "oid", "varchar", "float4", "float8", "real"]


def test_procedures_resolve_no_type_through_the_callers_search_path(fresh_database, connect, emulator):
    """A tenant plants domains named like the types of the procedures' SQL;
    a superuser calls the procedures with the tenant's schema first."""
    name = fresh_database("CREATE EXTENSION aws_ml CASCADE")
    admin = connect(dbname=name)
    admin.execute(SPY_DOMAINS)
    for type_name in SPIED_TYPES:
        base = "float4" if type_name == "real" else type_name
        admin.execute(f"CREATE DOMAIN public.{type_name} AS pg_catalog.{base} "
                      f"CHECK (public.spy('{type_name}'))")
    admin.execute("CREATE DOMAIN public._float8 AS pg_catalog.float8[] CHECK (public.spy('float8[]'))")
    admin.execute("CREATE TABLE public.notes (body pg_catalog.text, sentiment pg_catalog.varchar, "
                  "confidence pg_catalog.float4, embedding pg_catalog.float8[])")
    admin.execute("INSERT INTO public.notes (body) VALUES ('I love it'), ('I hate it')")
    admin.execute("SET search_path = public, pg_catalog")
    admin.execute("CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en')")
    admin.execute("CALL aws_bedrock.materialize_embeddings('notes', 'body', 'embedding', "
                  "'amazon.titan-embed-text-v1')")
    assert admin.execute("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'notes'").fetchone() == (1,)
    assert admin.execute("SELECT count(*) FROM public.notes WHERE sentiment IS NOT NULL "
                         "AND embedding IS NOT NULL").fetchone() == (2,)
    assert admin.execute("SELECT what FROM public.spied").fetchall() == []
    # the plants do catch unqualified names
    admin.execute("SELECT '(0,1)'::tid, 1::int4")
    assert admin.execute("SELECT what FROM public.spied ORDER BY what").fetchall() == [("int4",), ("tid",)]
