-- aws_ml 1.0: Amazon Comprehend and the SageMaker runtime from SQL.
-- The function bodies import the aws_ml Python package, which the C module
-- (MODULE_PATHNAME, loaded at plan time by the planner support function)
-- has made importable: the package installed with it (python_path.c).
\echo Use "CREATE EXTENSION aws_ml" to load this file. \quit

-- The administrative role. Roles are cluster-wide: another database of the
-- cluster may already have created it, and DROP EXTENSION leaves it in place.
-- A role of that name that can log in is someone else's (a CREATEROLE user
-- may have made it to receive the grants below): refuse it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'aws_ml') THEN
        CREATE ROLE aws_ml NOLOGIN;
    ELSIF (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'aws_ml') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'duplicate_object',
            MESSAGE = 'aws_ml: a role named aws_ml already exists, and it can log in',
            DETAIL = 'The extension grants the role aws_ml the use of the server''s AWS credentials; '
                     'it creates that role NOLOGIN and adopts an existing one only if it is NOLOGIN.',
            HINT = 'Find out who created it. Then DROP ROLE aws_ml, or ALTER ROLE aws_ml NOLOGIN after '
                   'reviewing who is a member of it, and create the extension again.';
    END IF;
END
$$;

CREATE SCHEMA aws_ml;
CREATE SCHEMA aws_comprehend;
CREATE SCHEMA aws_sagemaker;

-- The planner support function of every aws_ml function: it makes the
-- planner load the C module, which defines the aws_ml.* settings, before a
-- parallel plan runs (PostgreSQL cannot define settings inside one).
CREATE FUNCTION aws_ml._plan_support(internal)
RETURNS internal
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'aws_ml_plan_support';

CREATE FUNCTION aws_comprehend.detect_sentiment(
    input_text varchar,
    language_code varchar,
    max_rows_per_batch int DEFAULT NULL,
    OUT sentiment varchar,
    OUT confidence real)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE COST 5000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.comprehend import detect_sentiment
return detect_sentiment(input_text, language_code, max_rows_per_batch)
$$;

-- Batch mode's forms of the row functions (extension/src/batch/batch_scan.c): one
-- array per argument, one element per row of a batch; one result row per
-- element, up to the first row whose call fails because of its input, which
-- the batching node evaluates row by row when the query reaches it.
CREATE FUNCTION aws_comprehend._detect_sentiment_rows(
    input_text varchar[],
    language_code varchar[],
    max_rows_per_batch int[])
RETURNS TABLE (sentiment varchar, confidence real)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE COST 5000 ROWS 1000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.comprehend import detect_sentiment_rows
return detect_sentiment_rows(input_text, language_code, max_rows_per_batch)
$$;

CREATE FUNCTION aws_comprehend.batch_detect_sentiment(
    input_texts text[],
    language_code varchar,
    max_rows_per_batch int DEFAULT NULL)
RETURNS TABLE (ordinality int, sentiment varchar, confidence real)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE COST 5000 ROWS 100
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.comprehend import batch_detect_sentiment
return batch_detect_sentiment(input_texts, language_code, max_rows_per_batch)
$$;

-- SageMaker: the entry points are C (PL/Python cannot take "any" or
-- anyarray); they write CSV rows and pass them to _invoke_endpoint_csv, which
-- sends them. The C functions call it through fmgr, without a second
-- EXECUTE check.
CREATE FUNCTION aws_sagemaker._invoke_endpoint_csv(
    endpoint_name varchar,
    max_rows_per_batch int,
    csv_rows text[])
RETURNS varchar[]
LANGUAGE plpython3u VOLATILE PARALLEL SAFE COST 5000
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.sagemaker import invoke_endpoint_csv
return invoke_endpoint_csv(endpoint_name, max_rows_per_batch, csv_rows)
$$;

CREATE FUNCTION aws_sagemaker._invoke_endpoint_rows(
    endpoint_name varchar[],
    max_rows_per_batch int[],
    csv_rows text[])
RETURNS TABLE (model_output varchar)
LANGUAGE plpython3u VOLATILE PARALLEL SAFE COST 5000 ROWS 1000
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.sagemaker import invoke_endpoint_rows
return invoke_endpoint_rows(endpoint_name, max_rows_per_batch, csv_rows)
$$;

CREATE FUNCTION aws_sagemaker._csv_rows(model_inputs anyarray)
RETURNS text[]
LANGUAGE C STABLE PARALLEL SAFE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS 'MODULE_PATHNAME', 'aws_ml_sagemaker_csv_rows';

CREATE FUNCTION aws_sagemaker.invoke_endpoint(
    endpoint_name varchar,
    max_rows_per_batch int,
    VARIADIC model_input "any",
    OUT model_output varchar)
LANGUAGE C VOLATILE PARALLEL SAFE COST 5000
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS 'MODULE_PATHNAME', 'aws_ml_sagemaker_invoke_endpoint';

CREATE FUNCTION aws_sagemaker.batch_invoke_endpoint(
    endpoint_name varchar,
    max_rows_per_batch int,
    model_inputs anyarray)
RETURNS TABLE (ordinality int, model_output varchar)
LANGUAGE C VOLATILE PARALLEL SAFE COST 5000 ROWS 100
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS 'MODULE_PATHNAME', 'aws_ml_sagemaker_batch_invoke_endpoint';

-- Per-session statistics of the service calls (aws_ml/stats.py).
CREATE FUNCTION aws_ml.stats()
RETURNS TABLE (service text, operation text, calls bigint, rows bigint, requests bigint,
               min_batch_size int, avg_batch_size float8, max_batch_size int,
               min_request_ms float8, avg_request_ms float8, max_request_ms float8,
               retries bigint, throttles bigint, errors bigint, cache_hits bigint)
LANGUAGE plpython3u VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.stats import rows
return rows()
$$;

CREATE FUNCTION aws_ml.stats_reset()
RETURNS void
LANGUAGE plpython3u VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SUPPORT aws_ml._plan_support
AS $$
from aws_ml.stats import reset
reset()
$$;

-- Backfills commit after every batch, and PostgreSQL forbids COMMIT in a
-- procedure with a SET clause: no SET search_path here. Their bodies'
-- statements are schema-qualified throughout instead (aws_ml.materialize).
-- A procedure has no planner support function: it loads the C module
-- itself, which makes the package importable.
CREATE PROCEDURE aws_comprehend.materialize_sentiment(
    table_name regclass,
    text_column name,
    language_code varchar,
    sentiment_column name DEFAULT 'sentiment',
    confidence_column name DEFAULT 'confidence',
    batch_size int DEFAULT 500)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.comprehend import materialize_sentiment
materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size)
$$;

-- No one but the members of the aws_ml role may spend the server's AWS
-- credentials. Without grant option: a member cannot hand a function on to
-- PUBLIC or anyone else (such a grant, recorded as aws_ml's, would outlive
-- the member's own REVOKE). PostgreSQL has no negative grants: REVOKE USAGE
-- ON SCHEMA ... FROM tenant shuts out a tenant a superuser granted USAGE.
REVOKE ALL ON ALL ROUTINES IN SCHEMA aws_ml, aws_comprehend, aws_sagemaker FROM PUBLIC;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA aws_ml, aws_comprehend, aws_sagemaker TO aws_ml;
GRANT USAGE ON SCHEMA aws_ml, aws_comprehend, aws_sagemaker TO aws_ml;
