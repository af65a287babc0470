-- aws_ml 2.1 -> 2.2: the backfills are C entry points over their PL/Python
-- bodies.
\echo Use "ALTER EXTENSION aws_ml UPDATE TO '2.2'" to load this file. \quit

-- A backfill's errors read as PostgreSQL's own only when PostgreSQL calls
-- its PL/Python body through the hook the C module installs as it loads
-- (python/deliberate_errors.c), and PostgreSQL asks for that hook when it
-- looks the procedure up, before the body runs. A PL/Python procedure that
-- loads the module itself was looked up too early on a session's first call
-- where the module is not preloaded, and its error carried PL/Python's
-- traceback. A C entry point loads the module as it is looked up, then
-- looks up its body, the PL/Python procedure of the same name and arguments
-- in the internal schema aws_ml (python/procedure_bodies.c).
CREATE PROCEDURE aws_ml.materialize_sentiment(
    table_name regclass,
    text_column name,
    language_code varchar,
    sentiment_column name,
    confidence_column name,
    batch_size int)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.comprehend import materialize_sentiment
materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size)
$$;

CREATE OR REPLACE PROCEDURE aws_comprehend.materialize_sentiment(
    table_name regclass,
    text_column name,
    language_code varchar,
    sentiment_column name DEFAULT 'sentiment',
    confidence_column name DEFAULT 'confidence',
    batch_size int DEFAULT 500)
LANGUAGE C SECURITY INVOKER
AS 'MODULE_PATHNAME', 'aws_ml_call_procedure_body';

CREATE PROCEDURE aws_ml.materialize_embeddings(
    table_name regclass,
    input_column name,
    embedding_column name,
    model_id varchar,
    json_key text,
    batch_size int,
    max_concurrency int)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.bedrock import materialize_embeddings
materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size, max_concurrency)
$$;

CREATE OR REPLACE PROCEDURE aws_bedrock.materialize_embeddings(
    table_name regclass,
    input_column name,
    embedding_column name,
    model_id varchar,
    json_key text DEFAULT NULL,
    batch_size int DEFAULT 100,
    max_concurrency int DEFAULT 4)
LANGUAGE C SECURITY INVOKER
AS 'MODULE_PATHNAME', 'aws_ml_call_procedure_body';

-- The entry points call their bodies through fmgr: EXECUTE on an entry point
-- is all a caller needs, and only the entry points call a body.
REVOKE ALL ON PROCEDURE aws_ml.materialize_sentiment, aws_ml.materialize_embeddings FROM PUBLIC;
