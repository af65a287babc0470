-- aws_commons 1.1: create_aws_credentials's session_token is optional, as AWS documents it.
\echo Use "ALTER EXTENSION aws_commons UPDATE TO '1.1'" to load this file. \quit

CREATE OR REPLACE FUNCTION aws_commons.create_aws_credentials(
    access_key text,
    secret_key text,
    session_token text DEFAULT NULL
) RETURNS aws_commons._aws_credentials_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ROW($1, $2, $3)::aws_commons._aws_credentials_1 $$;
