-- aws_s3 1.2 -> 1.3: aws_s3._import_target makes all the checks an import's
-- COPY makes before it reads data, in COPY's order, so that they come before
-- any request.
\echo Use "ALTER EXTENSION aws_s3 UPDATE TO '1.3'" to load this file. \quit

DROP FUNCTION aws_s3._import_target(text);

-- The table an import's table_name and column_list name, read as its COPY
-- reads them (SQL's grammar, the options' too), opened and checked as its
-- COPY checks it before it reads any data: columns, the caller's
-- privileges, row security. Whether the transaction may write it is checked
-- next, then the options' values, then the download starts. In the
-- caller's search_path, as the COPY.
CREATE FUNCTION aws_s3._import_target(table_name text, column_list text, options text)
RETURNS oid
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'aws_s3_import_target';
REVOKE ALL ON FUNCTION aws_s3._import_target(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._import_target(text, text, text) TO aws_s3;
