/*
 * ask.c: asking the service for a batch's calls.
 *
 * The rows of a site that make its call go to the site's batch-mode form
 * (aws_comprehend._detect_sentiment_rows and the like) in one call, in
 * parts of at most work_mem of arguments, which answers them in order up to
 * the first one the service refuses. The call runs in a subtransaction: if
 * a request fails (throttling after every attempt, the network), its error
 * is held for the rows it was for and raised when the query reaches one of
 * them, as row by row would raise it there. In parallel mode, which allows
 * no subtransaction, it fails the query at once.
 */
#include "postgres.h"

#include "compat.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "batch/node.h"

typedef struct Request
{
	BatchSite  *site;
	Datum		args[BATCH_MAX_ARGS];
	int		   *rows;			/* the batch's rows it asks for */
	int			count;
	int			answered;
} Request;

static void
request_context(void *arg)
{
	Request    *request = arg;
	BatchSite  *site = request->site;
	const BatchFunction *function = &batch_functions[site->kind];
	int64		first = site->node->fetched - site->node->nrows + 1;

	errcontext("aws_ml batch mode: %s.%s asked ahead for %d rows, the node's rows " INT64_FORMAT " to " INT64_FORMAT,
			   function->schema, function->name, request->count, first + request->rows[0],
			   first + request->rows[request->count - 1]);
}

/* Calls the batch-mode form for request's rows; keeps the answers it gives, in order. */
static void
call_rows_function(BatchScanState *node, ExprContext *econtext, void *arg)
{
	Request    *request = arg;
	BatchSite  *site = request->site;
	int			nargs = batch_functions[site->kind].nargs;
	LOCAL_FCINFO(fcinfo, BATCH_MAX_ARGS);
	ReturnSetInfo rsinfo = {T_ReturnSetInfo};
	ErrorContextCallback error_context;

	rsinfo.econtext = econtext;
	rsinfo.allowedModes = SFRM_ValuePerCall;
	rsinfo.returnMode = SFRM_ValuePerCall;
	InitFunctionCallInfoData(*fcinfo, &site->rows, nargs, InvalidOid, NULL, (Node *) &rsinfo);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = request->args[i];
		fcinfo->args[i].isnull = false;
	}
	error_context.callback = request_context;
	error_context.arg = request;
	error_context.previous = error_context_stack;
	error_context_stack = &error_context;
	for (;;)
	{
		Datum		value;
		int			row;

		fcinfo->isnull = false;
		rsinfo.isDone = ExprSingleResult;
		value = FunctionCallInvoke(fcinfo);
		if (rsinfo.isDone == ExprEndResult)
			break;
		if (request->answered == request->count)
			elog(ERROR, "the batch-mode form of %s returned more rows than it was given",
				 batch_functions[site->kind].name);
		row = request->rows[request->answered++];
		site->nulls[row] = fcinfo->isnull;
		site->values[row] = batch_copy_value(node, value, fcinfo->isnull, site->resultbyval, site->resultlen);
		site->answer[row] = ANSWER_READY;
	}
	error_context_stack = error_context.previous;
}

/* The bytes a value takes in the batch-mode form's arrays. */
static Size
value_bytes(Datum value, int16 typlen)
{
	return typlen == -1 ? toast_raw_datum_size(value) : Max(typlen, sizeof(Datum));
}

/*
 * Builds request's arrays from site's arguments for rows (count of them),
 * at most work_mem of them (a row's own may be more), and at most a quarter
 * of the 1 GB an array may take; returns the rows taken.
 */
static int
build_request(BatchScanState *node, Request *request, int *rows, int count)
{
	BatchSite  *site = request->site;
	const BatchFunction *function = &batch_functions[site->kind];
	Size		limit = Min((Size) work_mem * 1024, MaxAllocSize / 4);
	Datum	   *values[BATCH_MAX_ARGS];
	bool	   *nulls[BATCH_MAX_ARGS];
	Size		bytes = 0;
	int			n;
	int			lbound = 1;

	for (int i = 0; i < function->nargs; i++)
	{
		values[i] = palloc(sizeof(Datum) * count);
		nulls[i] = palloc(sizeof(bool) * count);
	}
	for (n = 0; n < count && (n == 0 || bytes < limit); n++)
	{
		Size		at = (Size) rows[n] * site->nargs;

		for (int i = 0; i < function->nargs; i++)
		{
			if (function->csv_inputs && i == function->nargs - 1)
			{
				values[i][n] = site->csv_lines[rows[n]];
				nulls[i][n] = false;
				bytes += VARSIZE(DatumGetPointer(values[i][n]));
				continue;
			}
			values[i][n] = site->arg_values[at + i];
			nulls[i][n] = site->arg_nulls[at + i];
			if (!nulls[i][n])
				bytes += value_bytes(values[i][n], site->arglen[i]);
		}
	}
	for (int i = 0; i < function->nargs; i++)
	{
		Oid			type = function->csv_inputs && i == function->nargs - 1 ? TEXTOID : function->argtypes[i];
		int16		len;
		bool		byval;
		char		align;

		get_typlenbyvalalign(type, &len, &byval, &align);
		request->args[i] = PointerGetDatum(construct_md_array(values[i], nulls[i], 1, &n, &lbound, type, len,
															  byval, align));
	}
	request->rows = rows;
	request->count = n;
	request->answered = 0;
	return n;
}

/*
 * Asks the service for the rows of site marked ANSWER_ASKED from row from
 * up to the batch's ask_limit. At a row the service refuses, or a request
 * that fails, the batch stops asking: the query fails at that row, unless
 * the row's own call succeeds, and the rest is asked for then. False when
 * a request failed (its error is held for its rows).
 */
bool
batch_ask_service(BatchScanState *node, BatchSite *site, bool parallel, int from)
{
	MemoryContext part_context = AllocSetContextCreate(CurrentMemoryContext, "aws_ml batch request",
													   ALLOCSET_DEFAULT_SIZES);
	int		   *rows = palloc(sizeof(int) * node->nrows);
	int			count = 0;
	int			start = 0;
	bool		asked = true;

	for (int row = from; row < node->ask_limit; row++)
	{
		if (site->answer[row] == ANSWER_ASKED)
			rows[count++] = row;
	}
	while (start < count)
	{
		MemoryContext caller = MemoryContextSwitchTo(part_context);
		Request		request = {site};
		ErrorData  *error = NULL;

		build_request(node, &request, rows + start, count - start);
		if (parallel)
			call_rows_function(node, node->rows_context, &request);
		else
			error = batch_in_subtransaction(node, call_rows_function, &request, node->batch_context);
		MemoryContextSwitchTo(caller);
		MemoryContextReset(part_context);
		if (error != NULL)
		{
			for (int i = start + request.answered; i < count; i++)
			{
				site->answer[rows[i]] = ANSWER_FAILED;
				site->errors[rows[i]] = error;
			}
			node->ask_limit = rows[start + request.answered];
			asked = false;
			break;
		}
		/* the first row not answered: the service refused its input */
		if (request.answered < request.count)
		{
			site->answer[rows[start + request.answered]] = ANSWER_REFUSED;
			node->ask_limit = rows[start + request.answered];
			break;
		}
		start += request.answered;
	}
	MemoryContextDelete(part_context);
	return asked;
}
