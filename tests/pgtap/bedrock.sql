-- Catalog facts of aws_bedrock (aws_ml 2.0): signatures, attributes, privileges.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(23);

SELECT has_function('aws_bedrock', 'invoke_model', ARRAY['character varying', 'text', 'text', 'text']);
SELECT is(pg_get_function_arguments('aws_bedrock.invoke_model(varchar, text, text, text)'::regprocedure),
          'model_id character varying, content_type text, accept_type text, model_input text, OUT model_output character varying',
          'invoke_model has the reference signature');

SELECT has_function('aws_bedrock', 'invoke_model_get_embeddings', ARRAY['character varying', 'text', 'text', 'text']);
SELECT is(pg_get_function_arguments('aws_bedrock.invoke_model_get_embeddings(varchar, text, text, text)'::regprocedure),
          'model_id character varying, content_type text, json_key text, model_input text, OUT model_output double precision[]',
          'invoke_model_get_embeddings has the reference signature');

SELECT has_function('aws_bedrock', 'batch_invoke_model', ARRAY['character varying', 'text', 'text', 'text[]', 'integer']);
SELECT is(pg_get_function_arguments('aws_bedrock.batch_invoke_model(varchar, text, text, text[], int)'::regprocedure),
          'model_id character varying, content_type text, accept_type text, model_inputs text[], max_concurrency integer DEFAULT 4',
          'batch_invoke_model takes the inputs as an array and max_concurrency defaulting to 4');
SELECT is(pg_get_function_result('aws_bedrock.batch_invoke_model(varchar, text, text, text[], int)'::regprocedure),
          'TABLE(ordinality integer, model_output character varying)',
          'batch_invoke_model returns ordinality, model_output');

SELECT has_function('aws_bedrock', 'batch_invoke_model_get_embeddings', ARRAY['character varying', 'text', 'text', 'text[]', 'integer']);
SELECT is(pg_get_function_arguments('aws_bedrock.batch_invoke_model_get_embeddings(varchar, text, text, text[], int)'::regprocedure),
          'model_id character varying, content_type text, json_key text, model_inputs text[], max_concurrency integer DEFAULT 4',
          'batch_invoke_model_get_embeddings takes the inputs as an array and max_concurrency defaulting to 4');
SELECT is(pg_get_function_result('aws_bedrock.batch_invoke_model_get_embeddings(varchar, text, text, text[], int)'::regprocedure),
          'TABLE(ordinality integer, model_output double precision[])',
          'batch_invoke_model_get_embeddings returns ordinality, model_output');

SELECT has_function('aws_bedrock', '_invoke_model_rows', ARRAY['character varying[]', 'text[]', 'text[]', 'text[]']);
SELECT is(pg_get_function_result('aws_bedrock._invoke_model_rows(varchar[], text[], text[], text[])'::regprocedure),
          'TABLE(model_output character varying)', 'batch mode''s invoke_model returns model_output, a row an element');
SELECT has_function('aws_bedrock', '_invoke_model_get_embeddings_rows', ARRAY['character varying[]', 'text[]', 'text[]', 'text[]']);
SELECT is(pg_get_function_result('aws_bedrock._invoke_model_get_embeddings_rows(varchar[], text[], text[], text[])'::regprocedure),
          'TABLE(model_output double precision[])', 'batch mode''s invoke_model_get_embeddings returns model_output');

SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'aws_bedrock'::regnamespace AND prokind = 'f'), 6,
          'aws_bedrock has the four functions and their two batch-mode forms');
SELECT is(ARRAY(SELECT proname::text FROM pg_proc WHERE pronamespace = 'aws_bedrock'::regnamespace AND prokind = 'p'
                ORDER BY proname),
          ARRAY['_materialize_embeddings_shards', 'materialize_embeddings'],
          'aws_bedrock has two procedures, materialize_embeddings and its form for the shards of a Citus node');
SELECT is((SELECT (l.lanname, p.prosrc)::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE p.oid = 'aws_bedrock.materialize_embeddings(regclass, name, name, varchar, text, int, int)'::regprocedure),
          '(c,aws_ml_call_procedure_body)',
          'materialize_embeddings is a C entry point, which loads the module before it looks its body up');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'aws_bedrock'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC has no EXECUTE on any aws_bedrock function');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'aws_bedrock'::regnamespace
      AND (NOT has_function_privilege('aws_ml', p.oid, 'EXECUTE')
           OR has_function_privilege('aws_ml', p.oid, 'EXECUTE WITH GRANT OPTION'))
$$, 'aws_ml can execute every aws_bedrock function, and grant none');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE p.pronamespace = 'aws_bedrock'::regnamespace AND p.prokind = 'f'
      AND (l.lanname <> 'plpython3u' OR p.provolatile <> 'v' OR p.proparallel <> 's' OR p.prosecdef OR p.proisstrict)
$$, 'every aws_bedrock function is PL/Python, VOLATILE, PARALLEL SAFE, SECURITY INVOKER, not STRICT');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'aws_bedrock'::regnamespace AND p.prokind = 'f'
      AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']
$$, 'every aws_bedrock function pins search_path to pg_catalog, pg_temp');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'aws_bedrock'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpython3u')
      AND (array_length(string_to_array(btrim(p.prosrc, E'\n'), E'\n'), 1) <> CASE p.prokind WHEN 'p' THEN 3 ELSE 2 END
           OR btrim(p.prosrc, E'\n') <> CASE p.prokind WHEN 'p' THEN E'plpy.execute("LOAD ''$libdir/plugins/aws_ml''")\n'
                                                       ELSE '' END
                                     || 'from aws_ml.bedrock import ' || ltrim(p.proname, '_') || E'\n'
                                     || CASE p.prorettype WHEN 'void'::regtype THEN '' ELSE 'return ' END
                                     || ltrim(p.proname, '_')
                                     || substring(btrim(p.prosrc, E'\n') from '\([^\n]*\)$'))
$$, 'every aws_bedrock body is one import and one call of its namesake, a procedure''s after loading the module');

SELECT ok(has_schema_privilege('aws_ml', 'aws_bedrock', 'USAGE')
          AND NOT has_schema_privilege('aws_ml', 'aws_bedrock', 'USAGE WITH GRANT OPTION')
          AND NOT has_schema_privilege('public', 'aws_bedrock', 'USAGE'),
          'aws_ml has USAGE on aws_bedrock without grant option, PUBLIC none');

SELECT * FROM finish();
ROLLBACK;
