-- aws_ml 2.0 -> 2.1: the aws_ml role holds EXECUTE and USAGE without grant
-- option, and the backfills fill Citus distributed tables.
\echo Use "ALTER EXTENSION aws_ml UPDATE TO '2.1'" to load this file. \quit

-- Before 2.1 the scripts granted them WITH GRANT OPTION: a member could hand
-- a function to PUBLIC, a grant recorded as aws_ml's that outlived the
-- member's REVOKE. CASCADE takes away the grant option and every grant made
-- with it; on an installation without them (created at 2.1) it changes
-- nothing. docs/operations.md: how to audit.
REVOKE GRANT OPTION FOR EXECUTE ON ALL ROUTINES IN SCHEMA aws_ml, aws_comprehend, aws_sagemaker, aws_bedrock
    FROM aws_ml CASCADE;
REVOKE GRANT OPTION FOR USAGE ON SCHEMA aws_ml, aws_comprehend, aws_sagemaker, aws_bedrock FROM aws_ml CASCADE;

-- Internal: materialize_sentiment of a Citus distributed table runs this on
-- each node that holds some of its shards, which it fills one after another;
-- it answers with the rows filled and the error that stopped it, if any
-- (aws_ml.distributed).
CREATE PROCEDURE aws_comprehend._materialize_sentiment_shards(
    shards regclass[],
    text_column name,
    language_code varchar,
    sentiment_column name,
    confidence_column name,
    batch_size int,
    INOUT outcome jsonb DEFAULT NULL)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.comprehend import materialize_sentiment_shards
return materialize_sentiment_shards(shards, text_column, language_code, sentiment_column, confidence_column, batch_size)
$$;

-- Internal: see aws_comprehend._materialize_sentiment_shards.
CREATE PROCEDURE aws_bedrock._materialize_embeddings_shards(
    shards regclass[],
    input_column name,
    embedding_column name,
    model_id varchar,
    json_key text,
    batch_size int,
    max_concurrency int,
    INOUT outcome jsonb DEFAULT NULL)
LANGUAGE plpython3u SECURITY INVOKER
AS $$
plpy.execute("LOAD 'MODULE_PATHNAME'")
from aws_ml.bedrock import materialize_embeddings_shards
return materialize_embeddings_shards(shards, input_column, embedding_column, model_id, json_key, batch_size, max_concurrency)
$$;

REVOKE ALL ON PROCEDURE aws_comprehend._materialize_sentiment_shards, aws_bedrock._materialize_embeddings_shards
    FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE aws_comprehend._materialize_sentiment_shards, aws_bedrock._materialize_embeddings_shards
    TO aws_ml;
