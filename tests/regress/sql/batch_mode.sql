-- Batch mode's plans: where the batching node (Custom Scan AwsMlBatch) goes,
-- which calls it makes in batches, and EXPLAIN ANALYZE's Batch Processing
-- line. Nothing here sends a request: the plans are only explained, and the
-- queries that run have only NULL inputs, which are never sent.
CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;
SET client_min_messages = warning;
CREATE TABLE notes (id int PRIMARY KEY, body text, mood text);
CREATE TABLE clinician_notes (id int PRIMARY KEY, french_notes text, sentiment varchar, confidence real);
CREATE TABLE support (feedback text);
CREATE TABLE events (id int, event_type int, event_day date, amount real);
CREATE TABLE companies (id int, free_cash_flow numeric(18, 6), debt numeric(18, 6));

-- The select list: one call a row, its fields read from one batched call.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment,
       (aws_comprehend.detect_sentiment(body, 'en')).confidence FROM notes;
EXPLAIN (COSTS OFF) SELECT (aws_comprehend.detect_sentiment(body, 'en')).* FROM notes;

-- WHERE: a condition that can neither fail nor call stays below, the rest is the batching node's filter.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM notes
WHERE id > 100 AND (aws_comprehend.detect_sentiment(body, 'en')).sentiment = 'POSITIVE';

-- HAVING, over the groups.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT mood, count(*) FROM notes GROUP BY mood
HAVING (aws_comprehend.detect_sentiment(mood, 'en')).sentiment <> 'NEUTRAL';

-- CASE: a simple CASE's test and a searched CASE's first WHEN are batched,
-- and a call in a branch only some rows reach, for those rows.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT CASE (aws_comprehend.detect_sentiment(body, 'en')).sentiment WHEN 'POSITIVE' THEN 1 ELSE 0 END
FROM notes;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT CASE WHEN (aws_comprehend.detect_sentiment(body, 'en')).sentiment = 'POSITIVE' THEN 'yes' END
FROM notes;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT CASE WHEN id > 10 THEN (aws_comprehend.detect_sentiment(body, 'en')).sentiment END FROM notes;

-- FROM, reading the rows before it: the reference's sentiment query.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT feedback, s.sentiment,s.confidence
FROM support,aws_comprehend.detect_sentiment(feedback, 'en') s
ORDER BY s.confidence DESC;
EXPLAIN (COSTS OFF)
SELECT n.id, s.* FROM notes n LEFT JOIN LATERAL aws_comprehend.detect_sentiment(n.body, 'en') s ON true;
-- A call in FROM that reads no row before it is made once: not batched.
EXPLAIN (COSTS OFF) SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en');

-- Aggregates: the node below the Agg asks for its arguments' calls.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT mood, avg((aws_comprehend.detect_sentiment(body, 'en')).confidence) FROM notes GROUP BY mood;

-- The reference's UPDATE: two equal calls a row, one batched call.
EXPLAIN (VERBOSE, COSTS OFF)
UPDATE clinician_notes SET sentiment = (aws_comprehend.detect_sentiment (french_notes, 'fr')).sentiment,
confidence = (aws_comprehend.detect_sentiment (french_notes, 'fr')).confidence
WHERE
clinician_notes.french_notes IS NOT NULL AND
LENGTH(TRIM(clinician_notes.french_notes)) > 0 AND
clinician_notes.sentiment IS NULL;

-- Statements that write.
EXPLAIN (COSTS OFF)
INSERT INTO clinician_notes (id, sentiment) SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM notes;
EXPLAIN (COSTS OFF)
CREATE TABLE scored AS SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM notes;
EXPLAIN (COSTS OFF)
CREATE MATERIALIZED VIEW scored AS SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM notes;

-- The reference's SageMaker wrappers, once PostgreSQL inlines them.
CREATE FUNCTION classify_event (
      IN event_type INT, IN event_day DATE, IN amount REAL, -- model inputs
      max_rows_per_batch INT DEFAULT NULL,  -- optional batch size limit
      OUT category INT)                     -- model output
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', max_rows_per_batch,
        event_type, event_day, COALESCE(amount, 0.0)
        )::INT                              -- casts output to type INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;
CREATE TYPE company_forecasts AS (
    six_month_estimated_return real,
    one_year_bankruptcy_probability float);
CREATE FUNCTION analyze_company (
    IN free_cash_flow NUMERIC(18, 6),
    IN debt NUMERIC(18,6),
    IN max_rows_per_batch INT DEFAULT NULL,
    OUT prediction company_forecasts) AS $$
  SELECT (aws_sagemaker.invoke_endpoint('endpt_name',
     max_rows_per_batch,free_cash_flow, debt))::company_forecasts;
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, classify_event(event_type, event_day, amount, 100) FROM events WHERE event_type = 2;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT c.id, p.* FROM companies c, analyze_company(c.free_cash_flow, c.debt) AS p;

-- Bedrock.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', 'application/json', 'embedding',
                                               json_build_object('inputText', body)::text)
FROM notes;

-- aws_ml.batch_mode = off: the plan PostgreSQL makes, calls row by row.
SET aws_ml.batch_mode = off;
EXPLAIN (COSTS OFF) SELECT (aws_comprehend.detect_sentiment(body, 'en')).* FROM notes;
RESET aws_ml.batch_mode;

-- Plans without a call are left as they are.
EXPLAIN (COSTS OFF) SELECT mood, count(*) FROM notes WHERE id > 5 GROUP BY mood;

-- EXPLAIN ANALYZE's Batch Processing line (without the times under TIMING OFF),
-- over blank texts, answered without a request, each a distinct input:
-- batches of 25 rows, then 25 rows more than the distinct inputs asked so far
-- (twice those the query took plus 25, less those asked), up to 1,000 or
-- max_rows_per_batch when given; a LIMIT caps the first batch. Rows that
-- repeat one input (a NULL text in every row) grow the batches by one row.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT (aws_comprehend.detect_sentiment(repeat(' ', n), 'en')).* FROM generate_series(1, 2500) n;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT (aws_comprehend.detect_sentiment(repeat(' ', n), 'en', 300)).* FROM generate_series(1, 2500) n;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT (aws_comprehend.detect_sentiment(NULL::text, 'en', 10)).* FROM generate_series(1, 2500) LIMIT 5;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT (aws_comprehend.detect_sentiment(NULL::text, 'en')).* FROM generate_series(1, 2500);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT aws_bedrock.invoke_model('amazon.titan-embed-text-v1', 'application/json', n::text, NULL)
FROM generate_series(1, 1200) n WHERE aws_bedrock.invoke_model('amazon.titan-embed-text-v1', 'application/json', n::text, NULL) IS NULL;
SELECT count(*), count(s.sentiment) FROM generate_series(1, 1500) i, aws_comprehend.detect_sentiment(NULL::text, 'en') s;
-- Under a Gather each worker batches its rows; the line counts every process's
-- batches. Only calls nothing can fail in are asked ahead there.
SET force_parallel_mode = on;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT (aws_comprehend.detect_sentiment(NULL::text, 'en')).* FROM generate_series(1, 2500);
RESET force_parallel_mode;
