-- aws_ml 1.0 -> 2.0: Amazon Bedrock (schema aws_bedrock).
\echo Use "ALTER EXTENSION aws_ml UPDATE TO '2.0'" to load this file. \quit

CREATE SCHEMA aws_bedrock;

CREATE FUNCTION aws_bedrock.invoke_model(
    model_id varchar,
    content_type text,
    accept_type text,
    model_input text,
    OUT model_output varchar)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import invoke_model
return invoke_model(model_id, content_type, accept_type, model_input)
$$;

CREATE FUNCTION aws_bedrock.invoke_model_get_embeddings(
    model_id varchar,
    content_type text,
    json_key text,
    model_input text,
    OUT model_output float8[])
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import invoke_model_get_embeddings
return invoke_model_get_embeddings(model_id, content_type, json_key, model_input)
$$;

-- Batch mode's forms (see aws_comprehend._detect_sentiment_rows).
CREATE FUNCTION aws_bedrock._invoke_model_rows(
    model_id varchar[],
    content_type text[],
    accept_type text[],
    model_input text[])
RETURNS TABLE (model_output varchar)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000 ROWS 1000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import invoke_model_rows
return invoke_model_rows(model_id, content_type, accept_type, model_input)
$$;

CREATE FUNCTION aws_bedrock._invoke_model_get_embeddings_rows(
    model_id varchar[],
    content_type text[],
    json_key text[],
    model_input text[])
RETURNS TABLE (model_output float8[])
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000 ROWS 1000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import invoke_model_get_embeddings_rows
return invoke_model_get_embeddings_rows(model_id, content_type, json_key, model_input)
$$;

CREATE FUNCTION aws_bedrock.batch_invoke_model(
    model_id varchar,
    content_type text,
    accept_type text,
    model_inputs text[],
    max_concurrency int DEFAULT 4)
RETURNS TABLE (ordinality int, model_output varchar)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000 ROWS 100
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import batch_invoke_model
return batch_invoke_model(model_id, content_type, accept_type, model_inputs, max_concurrency)
$$;

CREATE FUNCTION aws_bedrock.batch_invoke_model_get_embeddings(
    model_id varchar,
    content_type text,
    json_key text,
    model_inputs text[],
    max_concurrency int DEFAULT 4)
RETURNS TABLE (ordinality int, model_output float8[])
LANGUAGE plpython3u VOLATILE PARALLEL SAFE SECURITY INVOKER COST 5000 ROWS 100
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.bedrock import batch_invoke_model_get_embeddings
return batch_invoke_model_get_embeddings(model_id, content_type, json_key, model_inputs, max_concurrency)
$$;

-- No SET search_path: see aws_comprehend.materialize_sentiment.
CREATE PROCEDURE aws_bedrock.materialize_embeddings(
    table_name regclass,
    input_column name,
    embedding_column name,
    model_id varchar,
    json_key text DEFAULT NULL,
    batch_size int DEFAULT 100,
    max_concurrency int DEFAULT 4)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.bedrock import materialize_embeddings
materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size, max_concurrency)
$$;

REVOKE ALL ON ALL ROUTINES IN SCHEMA aws_bedrock FROM PUBLIC;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA aws_bedrock TO aws_ml;
GRANT USAGE ON SCHEMA aws_bedrock TO aws_ml;
