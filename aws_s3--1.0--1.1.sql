-- aws_s3 1.0 -> 1.1: the aws_s3 role holds EXECUTE and USAGE without grant
-- option (aws_s3 1.1 is 1.0 with that change alone).
\echo Use "ALTER EXTENSION aws_s3 UPDATE TO '1.1'" to load this file. \quit

-- As aws_ml 2.1's (aws_ml--2.0--2.1.sql): the grant option and every grant
-- made with it go.
REVOKE GRANT OPTION FOR EXECUTE ON ALL ROUTINES IN SCHEMA aws_s3 FROM aws_s3 CASCADE;
REVOKE GRANT OPTION FOR USAGE ON SCHEMA aws_s3 FROM aws_s3 CASCADE;
