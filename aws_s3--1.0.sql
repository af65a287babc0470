-- aws_s3 1.0: query results to Amazon S3 and S3 objects into tables, with
-- the signatures of RDS and Aurora. The function bodies import the aws_ml
-- Python package (aws_ml.s3), which the C module (MODULE_PATHNAME, loaded at
-- plan time by the planner support function) has made importable. The data
-- goes through COPY in the C module (extension/src/s3/s3_copy.c).
\echo Use "CREATE EXTENSION aws_s3" to load this file. \quit

-- The administrative role, as aws_ml's: a role of that name that can log in
-- is someone else's.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'aws_s3') THEN
        CREATE ROLE aws_s3 NOLOGIN;
    ELSIF (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'aws_s3') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'duplicate_object',
            MESSAGE = 'aws_s3: a role named aws_s3 already exists, and it can log in',
            DETAIL = 'The extension grants the role aws_s3 the use of the server''s AWS credentials; '
                     'it creates that role NOLOGIN and adopts an existing one only if it is NOLOGIN.',
            HINT = 'Find out who created it. Then DROP ROLE aws_s3, or ALTER ROLE aws_s3 NOLOGIN after '
                   'reviewing who is a member of it, and create the extension again.';
    END IF;
END
$$;

CREATE SCHEMA aws_s3;

-- Loads the C module at plan time (aws_ml._plan_support does so for aws_ml).
CREATE FUNCTION aws_s3._plan_support(internal)
RETURNS internal
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'aws_ml_plan_support';

-- COPY through the pipe of a transfer under way, named by its token, which
-- only the aws_ml package knows; without it they do nothing.
-- No SET search_path on these nor on the functions below: the query and the
-- table name are the caller's, resolved in the caller's search_path. The
-- forms with a bucket, a path and a region are the s3_info forms, in SQL.
CREATE FUNCTION aws_s3._copy_query_to_pipe(query text, options text, transfer bigint)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'aws_s3_copy_query_to_pipe';

-- How COPY TO lays out its output with options (checked as COPY checks them).
CREATE FUNCTION aws_s3._copy_layout(options text, OUT format text, OUT quote text, OUT escape text,
                                    OUT header boolean, OUT ascii_safe boolean)
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'aws_s3_copy_layout';

CREATE FUNCTION aws_s3._copy_pipe_to_table(table_name text, column_list text, options text, transfer bigint)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'aws_s3_copy_pipe_to_table';

CREATE FUNCTION aws_s3.query_export_to_s3(
    query text,
    s3_info aws_commons._s3_uri_1,
    options text DEFAULT NULL,
    kms_key text DEFAULT NULL,
    OUT rows_uploaded bigint,
    OUT files_uploaded bigint,
    OUT bytes_uploaded bigint)
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SUPPORT aws_s3._plan_support
AS $$
from aws_ml.s3 import query_export_to_s3
return query_export_to_s3(query, s3_info, options, kms_key)
$$;

CREATE FUNCTION aws_s3.query_export_to_s3(
    query text,
    bucket text,
    file_path text,
    region text DEFAULT NULL,
    options text DEFAULT NULL,
    kms_key text DEFAULT NULL,
    OUT rows_uploaded bigint,
    OUT files_uploaded bigint,
    OUT bytes_uploaded bigint)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
SELECT * FROM aws_s3.query_export_to_s3(query, aws_commons.create_s3_uri(bucket, file_path, region), options, kms_key)
$$;

CREATE FUNCTION aws_s3.table_import_from_s3(
    table_name text,
    column_list text,
    options text,
    s3_info aws_commons._s3_uri_1,
    credentials aws_commons._aws_credentials_1 DEFAULT NULL)
RETURNS text
LANGUAGE plpython3u VOLATILE PARALLEL UNSAFE
SUPPORT aws_s3._plan_support
AS $$
from aws_ml.s3 import table_import_from_s3
return table_import_from_s3(table_name, column_list, options, s3_info, credentials)
$$;

CREATE FUNCTION aws_s3.table_import_from_s3(
    table_name text,
    column_list text,
    options text,
    bucket text,
    file_path text,
    region text,
    access_key text DEFAULT NULL,
    secret_key text DEFAULT NULL,
    session_token text DEFAULT NULL)
RETURNS text
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
SELECT aws_s3.table_import_from_s3(table_name, column_list, options,
                                   aws_commons.create_s3_uri(bucket, file_path, region),
                                   aws_commons.create_aws_credentials(access_key, secret_key, session_token))
$$;

-- As aws_ml's: only the members of the aws_s3 role may spend the server's
-- AWS credentials, and they cannot grant the functions on.
REVOKE ALL ON ALL ROUTINES IN SCHEMA aws_s3 FROM PUBLIC;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA aws_s3 TO aws_s3;
GRANT USAGE ON SCHEMA aws_s3 TO aws_s3;
-- Its callers build their arguments with aws_commons' constructors.
GRANT USAGE ON SCHEMA aws_commons TO aws_s3;
