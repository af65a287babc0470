/*
 * copy_to_callback_test.c: a test module (tests/test_postgres_versions.py)
 * built with extension/src/s3/copy_to_callback.c for each PostgreSQL
 * version: copy_to_callback_output('COPY (query) TO STDOUT ...') returns
 * what copy_query_to_callback hands its callback, to compare with what the
 * same COPY sends the client.
 */
#include "postgres.h"

#include "compat.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

static StringInfo collected = NULL;

static void
collect(void *data, int len)
{
	appendBinaryStringInfo(collected, data, len);
}

PG_FUNCTION_INFO_V1(copy_to_callback_output);

Datum
copy_to_callback_output(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	CopyStmt   *copy = (CopyStmt *) linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT))->stmt;
	ParseState *pstate = make_parsestate(NULL);
	RawStmt    *query = makeNode(RawStmt);
	StringInfoData output;

	initStringInfo(&output);
	collected = &output;
	pstate->p_sourcetext = sql;
	query->stmt = copy->query;
	query->stmt_location = -1;
	copy_query_to_callback(pstate, query, copy->options, collect, NULL);
	PG_RETURN_BYTEA_P(cstring_to_text_with_len(output.data, output.len));
}
