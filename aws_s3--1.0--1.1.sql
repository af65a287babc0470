-- aws_s3 1.0 -> 1.1: the aws_s3 role holds EXECUTE and USAGE without grant
-- option, and aws_s3._copy_layout checks options for the direction of the
-- COPY they are for (aws_s3 1.1 is 1.0 with these two changes alone).
\echo Use "ALTER EXTENSION aws_s3 UPDATE TO '1.1'" to load this file. \quit

-- As aws_ml 2.1's (aws_ml--2.0--2.1.sql): the grant option and every grant
-- made with it go.
REVOKE GRANT OPTION FOR EXECUTE ON ALL ROUTINES IN SCHEMA aws_s3 FROM aws_s3 CASCADE;
REVOKE GRANT OPTION FOR USAGE ON SCHEMA aws_s3 FROM aws_s3 CASCADE;

-- How COPY lays out its data with options (checked as COPY FROM, or TO,
-- checks them): an import's options are checked as COPY FROM's before any
-- request. The aws_ml package of 1.1 calls this form only.
DROP FUNCTION aws_s3._copy_layout(text);
CREATE FUNCTION aws_s3._copy_layout(options text, is_from boolean, OUT format text, OUT quote text,
                                    OUT escape text, OUT header boolean, OUT ascii_safe boolean)
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'aws_s3_copy_layout';
REVOKE ALL ON FUNCTION aws_s3._copy_layout(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._copy_layout(text, boolean) TO aws_s3;
