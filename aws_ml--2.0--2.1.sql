-- aws_ml 2.0 -> 2.1: the aws_ml role holds EXECUTE and USAGE without grant
-- option (aws_ml 2.1 is 2.0 with that change alone).
\echo Use "ALTER EXTENSION aws_ml UPDATE TO '2.1'" to load this file. \quit

-- Before 2.1 the scripts granted them WITH GRANT OPTION: a member could hand
-- a function to PUBLIC, a grant recorded as aws_ml's that outlived the
-- member's REVOKE. CASCADE takes away the grant option and every grant made
-- with it; on an installation without them (created at 2.1) it changes
-- nothing. docs/operations.md: how to audit.
REVOKE GRANT OPTION FOR EXECUTE ON ALL ROUTINES IN SCHEMA aws_ml, aws_comprehend, aws_sagemaker, aws_bedrock
    FROM aws_ml CASCADE;
REVOKE GRANT OPTION FOR USAGE ON SCHEMA aws_ml, aws_comprehend, aws_sagemaker, aws_bedrock FROM aws_ml CASCADE;
