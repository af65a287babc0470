-- aws_s3 1.1 -> 1.2: aws_s3._import_target finds an import's table as its
-- COPY does (aws_s3 1.2 is 1.1 with this function alone).
\echo Use "ALTER EXTENSION aws_s3 UPDATE TO '1.2'" to load this file. \quit

-- The table an import's table_name names, read as its COPY reads it (SQL's
-- grammar), NULL if none: whether the transaction may write it is checked
-- before any request. In the caller's search_path, as the COPY.
CREATE FUNCTION aws_s3._import_target(table_name text)
RETURNS oid
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'aws_s3_import_target';
REVOKE ALL ON FUNCTION aws_s3._import_target(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._import_target(text) TO aws_s3;
