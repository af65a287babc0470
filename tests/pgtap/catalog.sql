-- Catalog facts of aws_ml and aws_commons: schemas, signatures, the role, privileges.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(29);

SELECT has_extension('aws_ml');
SELECT has_extension('aws_commons');
SELECT has_schema('aws_comprehend');
SELECT has_schema('aws_sagemaker');
SELECT has_schema('aws_bedrock');
SELECT has_role('aws_ml');
SELECT ok(NOT rolcanlogin, 'aws_ml is NOLOGIN') FROM pg_roles WHERE rolname = 'aws_ml';

SELECT has_type('aws_commons', '_s3_uri_1', 'aws_commons._s3_uri_1');
SELECT has_type('aws_commons', '_aws_credentials_1', 'aws_commons._aws_credentials_1');
SELECT has_type('aws_commons', '_lambda_function_arn_1', 'aws_commons._lambda_function_arn_1');
SELECT has_function('aws_commons', 'create_s3_uri', ARRAY['text', 'text', 'text']);
SELECT has_function('aws_commons', 'create_aws_credentials', ARRAY['text', 'text', 'text']);
SELECT has_function('aws_commons', 'create_lambda_function_arn', ARRAY['text', 'text']);

SELECT has_function('aws_comprehend', 'detect_sentiment', ARRAY['character varying', 'character varying', 'integer']);
SELECT is(pg_get_function_arguments('aws_comprehend.detect_sentiment(varchar, varchar, int)'::regprocedure),
          'input_text character varying, language_code character varying, max_rows_per_batch integer DEFAULT NULL::integer, OUT sentiment character varying, OUT confidence real',
          'detect_sentiment has the reference signature');
SELECT has_function('aws_comprehend', 'batch_detect_sentiment', ARRAY['text[]', 'character varying', 'integer']);
SELECT is(pg_get_function_result('aws_comprehend.batch_detect_sentiment(text[], varchar, int)'::regprocedure),
          'TABLE(ordinality integer, sentiment character varying, confidence real)',
          'batch_detect_sentiment returns ordinality, sentiment, confidence');

SELECT has_function('aws_comprehend', '_detect_sentiment_rows',
                    ARRAY['character varying[]', 'character varying[]', 'integer[]']);
SELECT is(pg_get_function_result('aws_comprehend._detect_sentiment_rows(varchar[], varchar[], int[])'::regprocedure),
          'TABLE(sentiment character varying, confidence real)', 'batch mode''s detect_sentiment returns a row an element');
SELECT has_function('aws_sagemaker', '_invoke_endpoint_rows', ARRAY['character varying[]', 'integer[]', 'text[]']);
SELECT is(pg_get_function_result('aws_sagemaker._invoke_endpoint_rows(varchar[], int[], text[])'::regprocedure),
          'TABLE(model_output character varying)', 'batch mode''s invoke_endpoint returns a row an element');

SELECT is_empty($$
    SELECT p.oid::regprocedure
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aws_comprehend', 'aws_sagemaker', 'aws_bedrock')
      AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC has no EXECUTE on any aws_ml function');

SELECT is_empty($$
    SELECT p.oid::regprocedure
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aws_comprehend', 'aws_sagemaker', 'aws_bedrock')
      AND (NOT has_function_privilege('aws_ml', p.oid, 'EXECUTE')
           OR has_function_privilege('aws_ml', p.oid, 'EXECUTE WITH GRANT OPTION'))
$$, 'aws_ml can execute every aws_ml function, and grant none');

SELECT is_empty($$
    SELECT p.oid::regprocedure
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aws_comprehend', 'aws_sagemaker', 'aws_bedrock')
      AND p.prokind <> 'p'
      AND (p.prosecdef OR NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'])
$$, 'every aws_ml function is SECURITY INVOKER with a pinned search_path');

-- A procedure with a SET clause cannot COMMIT: the backfills have none (and
-- schema-qualify their statements instead).
SELECT is_empty($$
    SELECT p.oid::regprocedure
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aws_comprehend', 'aws_sagemaker', 'aws_bedrock')
      AND p.prokind = 'p' AND (p.prosecdef OR p.proconfig IS NOT NULL)
$$, 'every aws_ml procedure is SECURITY INVOKER without a SET clause');
SELECT is((SELECT (p.prokind, l.lanname, p.prosrc)::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE p.oid = 'aws_comprehend.materialize_sentiment(regclass, name, varchar, name, name, int)'::regprocedure),
          '(p,c,aws_ml_call_procedure_body)',
          'aws_comprehend.materialize_sentiment is a C procedure, which loads the module before it looks its body up');
SELECT is(ARRAY(SELECT (p.oid::regprocedure, l.lanname, has_function_privilege('aws_ml', p.oid, 'EXECUTE'))::text
                FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                WHERE p.pronamespace = 'aws_ml'::regnamespace AND p.prokind = 'p' ORDER BY p.proname),
          ARRAY['("aws_ml.materialize_embeddings(regclass,name,name,character varying,text,integer,integer)",plpython3u,f)',
                '("aws_ml.materialize_sentiment(regclass,name,character varying,name,name,integer)",plpython3u,f)'],
          'the backfills'' bodies: PL/Python procedures in schema aws_ml that only a superuser may call');

SELECT is_empty($$
    SELECT n.nspname FROM pg_namespace n
    WHERE n.nspname IN ('aws_ml', 'aws_comprehend', 'aws_sagemaker', 'aws_bedrock')
      AND (NOT has_schema_privilege('aws_ml', n.oid, 'USAGE')
           OR has_schema_privilege('aws_ml', n.oid, 'USAGE WITH GRANT OPTION'))
$$, 'aws_ml has USAGE on the schemas, without grant option');
SELECT ok(NOT has_schema_privilege('public', 'aws_comprehend', 'USAGE'), 'PUBLIC has no USAGE on aws_comprehend');

SELECT * FROM finish();
ROLLBACK;
