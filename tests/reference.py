"""The Aurora user guide's examples, token for token (the page's line
breaks, which end its -- comments, restored): the tests and the quick-start
run these same texts."""

CLINICIAN_NOTES_UPDATE = """UPDATE clinician_notes SET sentiment = (aws_comprehend.detect_sentiment (french_notes, 'fr')).sentiment,
confidence = (aws_comprehend.detect_sentiment (french_notes, 'fr')).confidence
WHERE
clinician_notes.french_notes IS NOT NULL AND
LENGTH(TRIM(clinician_notes.french_notes)) > 0 AND
clinician_notes.sentiment IS NULL;"""

CLASSIFY_EVENT_2 = """CREATE FUNCTION classify_event (IN arg1 INT, IN arg2 DATE, OUT category INT)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', NULL,
        arg1, arg2                        -- model inputs are separate arguments
        )::INT                            -- cast the output to INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;"""

REGRESSION_MODEL = """CREATE FUNCTION regression_model (params REAL[], OUT estimate REAL)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
      'sagemaker_model_endpoint_name', NULL,
      params
      )::REAL
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;"""

CLASSIFY_EVENT_4 = """CREATE FUNCTION classify_event (
      IN event_type INT, IN event_day DATE, IN amount REAL, -- model inputs
      max_rows_per_batch INT DEFAULT NULL,  -- optional batch size limit
      OUT category INT)                     -- model output
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', max_rows_per_batch,
        event_type, event_day, COALESCE(amount, 0.0)
        )::INT                              -- casts output to type INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;"""

ANALYZE_COMPANY = """CREATE TYPE company_forecasts AS (
    six_month_estimated_return real,
    one_year_bankruptcy_probability float);

CREATE FUNCTION analyze_company (
    IN free_cash_flow NUMERIC(18, 6),
    IN debt NUMERIC(18,6),
    IN max_rows_per_batch INT DEFAULT NULL,
    OUT prediction company_forecasts) AS $$
  SELECT (aws_sagemaker.invoke_endpoint('endpt_name',
     max_rows_per_batch,free_cash_flow, debt))::company_forecasts;
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;"""
