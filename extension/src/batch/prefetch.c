/*
 * prefetch.c: a batch's calls, asked ahead.
 *
 * For each stage of sites (a later stage reads earlier stages' answers),
 * the node evaluates, for each row of the batch, the site's condition and
 * then its arguments, as the row's evaluation will; the rows that make the
 * call go to the site's batch-mode form in one call (in parts of at most
 * work_mem of arguments), which answers them in order up to the first one
 * the service refuses.
 *
 * Evaluating ahead must not change what the query sees. It runs in a
 * subtransaction, with an ExprContext of its own that ends with it: an
 * error there (a cast that fails, a division by zero, in a row the query
 * may never reach) is dropped, and that row's call is not asked for; when
 * the query reaches the row, its own evaluation raises the error where
 * row by row raises it. It counts no function calls (pg_stat_user_functions),
 * reads no initplan's result not yet computed, and evaluates nothing
 * volatile (sites.c). The request runs in a subtransaction too: if it
 * fails (throttling after every attempt, the network), the error is held
 * for the rows it was for and raised when the query reaches one of them.
 * A cancel is raised at once. In parallel mode PostgreSQL allows no
 * subtransaction: there only sites that nothing can fail in are asked
 * ahead, and a failed request fails the query at once.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "batch/node.h"
#include "python/backend.h"
#include "batch/sites.h"

/* ---------------------------------------------------------------------
 * What asking ahead needs of a site
 * ---------------------------------------------------------------------
 */

typedef struct Reads
{
	int			nchild;
	Bitmapset  *columns;
	Bitmapset  *params;
} Reads;

static bool
collect_reads(Node *node, Reads *reads)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varno == INDEX_VAR && ((Var *) node)->varattno > reads->nchild)
		reads->columns = bms_add_member(reads->columns, ((Var *) node)->varattno - reads->nchild - 1);
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		reads->params = bms_add_member(reads->params, ((Param *) node)->paramid);
	return expression_tree_walker(node, collect_reads, reads);
}

static ExprState *
init_ahead(Expr *expr, BatchScanState *node, BatchSite *site)
{
	ExprState  *state = ExecInitExpr(expr, &node->css.ss.ps);

	site->depends = bms_join(site->depends, batch_redirect(state, node, true));
	return state;
}

/*
 * Prepares site's condition and arguments for evaluation ahead, from
 * planned (condition, call). Every site's planned call must be known first:
 * the calls in them are redirected to their sites' answers.
 */
void
batch_site_init_ahead(BatchScanState *node, BatchSite *site, List *planned)
{
	Expr	   *condition = linitial(planned);
	int			saved_track_functions = pgstat_track_functions;
	Reads		reads = {node->nchild, NULL, NULL};
	ListCell   *lc;

	site->args = palloc0(sizeof(ExprState *) * Max(site->nargs, 1));
	site->arglen = palloc(sizeof(int16) * Max(site->nargs, 1));
	site->argbyval = palloc(sizeof(bool) * Max(site->nargs, 1));
	/* evaluating ahead is not calling: built without the steps that count calls */
	pgstat_track_functions = TRACK_FUNC_OFF;
	PG_TRY();
	{
		site->condition = condition ? init_ahead(condition, node, site) : NULL;
		foreach(lc, site->planned->args)
			site->args[foreach_current_index(lc)] = init_ahead(lfirst(lc), node, site);
	}
	PG_FINALLY();
	{
		pgstat_track_functions = saved_track_functions;
	}
	PG_END_TRY();
	foreach(lc, site->planned->args)
	{
		int			i = foreach_current_index(lc);
		Oid			type = exprType(lfirst(lc));

		get_typlenbyval(type, &site->arglen[i], &site->argbyval[i]);
		if (batch_functions[site->kind].max_rows_arg == i && IsA(lfirst(lc), Const) &&
			!((Const *) lfirst(lc))->constisnull)
			site->max_rows = Max(DatumGetInt32(((Const *) lfirst(lc))->constvalue), 0);
	}
	if (batch_functions[site->kind].csv_inputs)
	{
		int			first = batch_functions[site->kind].nargs - 1;

		site->input_types = palloc(sizeof(CsvType) * Max(site->nargs - first, 1));
		for (int i = first; i < site->nargs; i++)
			csv_type_init(&site->input_types[i - first], exprType(list_nth(site->planned->args, i)),
						  CurrentMemoryContext);
	}
	(void) collect_reads((Node *) planned, &reads);
	site->columns = reads.columns;
	site->params = reads.params;
	fmgr_info(batch_rows_function(site->kind), &site->rows);
}

/* ---------------------------------------------------------------------
 * Subtransactions
 * ---------------------------------------------------------------------
 */

typedef void (*Attempt) (BatchScanState *node, ExprContext *econtext, void *arg);

/*
 * Runs attempt in a subtransaction with an ExprContext that ends with it
 * (the callbacks a failed evaluation registered are dropped, as PL/pgSQL
 * drops them); returns the error it raised, copied into error_memory, or
 * NULL. A cancel is raised.
 */
static ErrorData *
in_subtransaction(BatchScanState *node, Attempt attempt, void *arg, MemoryContext error_memory)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ExprContext *econtext;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	econtext = CreateExprContext(node->css.ss.ps.state);
	PG_TRY();
	{
		attempt(node, econtext, arg);
		FreeExprContext(econtext, true);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(error_memory);
		error = CopyErrorData();
		MemoryContextSwitchTo(context);
		FlushErrorState();
		FreeExprContext(econtext, false);
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	if (error != NULL && error->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(error);
	return error;
}

/* ---------------------------------------------------------------------
 * Evaluating ahead
 * ---------------------------------------------------------------------
 */

static bool
answered(BatchScanState *node, Bitmapset *sites, int row)
{
	int			i = -1;

	while ((i = bms_next_member(sites, i)) >= 0)
	{
		if (node->sites[i].held->answer[row] != ANSWER_READY)
			return false;
	}
	return true;
}

/* Whether the answers site's condition and arguments read are there for row. */
static bool
can_evaluate(BatchScanState *node, BatchSite *site, int row)
{
	int			column = -1;

	if (!answered(node, site->depends, row))
		return false;
	while ((column = bms_next_member(site->columns, column)) >= 0)
	{
		if (!answered(node, node->computed_sites[column], row))
			return false;
	}
	return true;
}

/* Puts row into the slots evaluation ahead reads: the child's columns, and the computed columns it can compute. */
static void
load_row_ahead(BatchScanState *node, ExprContext *econtext, int row)
{
	TupleTableSlot *scan = node->css.ss.ss_ScanTupleSlot;

	batch_load_row(node, row);
	econtext->ecxt_scantuple = scan;
	econtext->ecxt_outertuple = node->child_row;
	for (int c = 0; c < node->ncomputed; c++)
	{
		int			column = node->nchild + c;

		scan->tts_isnull[column] = true;
		scan->tts_values[column] = (Datum) 0;
		if (answered(node, node->computed_sites[c], row))
			scan->tts_values[column] = ExecEvalExprSwitchContext(node->computed_ahead[c], econtext,
																 &scan->tts_isnull[column]);
	}
}

static Datum
copy_value(BatchScanState *node, Datum value, bool isnull, bool byval, int16 len)
{
	MemoryContext caller;

	if (isnull)
		return (Datum) 0;
	caller = MemoryContextSwitchTo(node->batch_context);
	value = datumCopy(value, byval, len);
	MemoryContextSwitchTo(caller);
	return value;
}

/* SageMaker's model inputs of row as one CSV row, as the row's call writes them (it may fail: an empty array). */
static Datum
csv_line_of(BatchScanState *node, BatchSite *site, int row)
{
	int			first = batch_functions[site->kind].nargs - 1;
	Size		at = (Size) row * site->nargs + first;
	CsvRow		csv;
	text	   *line;

	csv_row_init(&csv);
	line = csv_line(&csv, site->input_types, &site->arg_values[at], &site->arg_nulls[at], site->nargs - first);
	return copy_value(node, PointerGetDatum(line), false, false, -1);
}

/* Evaluates site's condition and arguments for the loaded row: ANSWER_ASKED if it makes the call. */
static void
evaluate_site(BatchScanState *node, BatchSite *site, ExprContext *econtext, int row)
{
	bool		isnull;
	bool		any_null = false;

	if (site->condition != NULL)
	{
		Datum		passed = ExecEvalExprSwitchContext(site->condition, econtext, &isnull);

		if (isnull || !DatumGetBool(passed))
		{
			site->answer[row] = ANSWER_SKIPPED;
			return;
		}
	}
	for (int i = 0; i < site->nargs; i++)
	{
		Size		at = (Size) row * site->nargs + i;
		Datum		value = ExecEvalExprSwitchContext(site->args[i], econtext, &site->arg_nulls[at]);

		site->arg_values[at] = copy_value(node, value, site->arg_nulls[at], site->argbyval[i], site->arglen[i]);
		any_null |= site->arg_nulls[at];
	}
	if (site->strict && any_null)
	{
		site->answer[row] = ANSWER_SKIPPED;
		return;
	}
	if (site->input_types)
		site->csv_lines[row] = csv_line_of(node, site, row);
	site->answer[row] = ANSWER_ASKED;
}

typedef struct Stage
{
	Bitmapset  *sites;
	bool		loading;		/* an error now is the row's, not a site's */
} Stage;

/* From node->ahead_row and node->ahead_site on: where an error resumes. */
static void
evaluate_rows(BatchScanState *node, ExprContext *econtext, void *arg)
{
	Stage	   *stage = arg;

	for (; node->ahead_row < node->nrows; node->ahead_row++, node->ahead_site = -1)
	{
		int			row = node->ahead_row;
		bool		loaded = false;

		CHECK_FOR_INTERRUPTS();
		/* the calls evaluated ahead are answered for this row */
		node->current = row;
		while ((node->ahead_site = bms_next_member(stage->sites, node->ahead_site)) >= 0)
		{
			BatchSite  *site = &node->sites[node->ahead_site];

			if (site->answer[row] != ANSWER_NONE || !can_evaluate(node, site, row))
				continue;
			if (!loaded)
			{
				stage->loading = true;
				load_row_ahead(node, econtext, row);
				stage->loading = false;
				loaded = true;
			}
			evaluate_site(node, site, econtext, row);
		}
		ResetExprContext(econtext);
	}
}

/* Marks the calls of row, or of site alone, as not asked for: the row's own evaluation fails. */
static void
skip(BatchScanState *node, Bitmapset *sites, int row, int site)
{
	int			i = -1;

	while ((i = bms_next_member(sites, i)) >= 0)
	{
		if ((site < 0 || i == site) && node->sites[i].answer[row] == ANSWER_NONE)
			node->sites[i].answer[row] = ANSWER_SKIPPED;
	}
}

static void
evaluate_ahead(BatchScanState *node, Bitmapset *sites, bool parallel, int from)
{
	Stage		stage = {sites, false};

	node->ahead_row = from;
	node->ahead_site = -1;
	if (parallel)
	{
		evaluate_rows(node, node->ahead_context, &stage);
		return;
	}
	while (node->ahead_row < node->nrows)
	{
		ErrorData  *error = in_subtransaction(node, evaluate_rows, &stage, CurrentMemoryContext);

		if (error == NULL)
			break;
		/* the row's own evaluation raises it, if the query gets there: nothing after it is asked for before */
		FreeErrorData(error);
		skip(node, sites, node->ahead_row, stage.loading ? -1 : node->ahead_site);
		node->ask_limit = Min(node->ask_limit, node->ahead_row);
		if (stage.loading)
		{
			node->ahead_row++;
			node->ahead_site = -1;
			stage.loading = false;
		}
	}
}

/* ---------------------------------------------------------------------
 * Asking the service
 * ---------------------------------------------------------------------
 */

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
		site->values[row] = copy_value(node, value, fcinfo->isnull, site->resultbyval, site->resultlen);
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
static bool
ask_service(BatchScanState *node, BatchSite *site, bool parallel, int from)
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
			error = in_subtransaction(node, call_rows_function, &request, node->batch_context);
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

/* ---------------------------------------------------------------------
 * The batch
 * ---------------------------------------------------------------------
 */

static bool
initplan_pending(BatchScanState *node, Bitmapset *params)
{
	ParamExecData *values = node->css.ss.ps.ps_ExprContext->ecxt_param_exec_vals;
	int			param = -1;

	while ((param = bms_next_member(params, param)) >= 0)
	{
		if (values[param].execPlan != NULL)
			return true;
	}
	return false;
}

/* The sites of stage to ask ahead now. */
static Bitmapset *
sites_of_stage(BatchScanState *node, int stage, bool parallel)
{
	Bitmapset  *sites = NULL;

	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		if (site->stage == stage && site->held == site && site->wanted &&
			(!parallel || (site->flags & BATCH_SITE_CANNOT_FAIL)) && !initplan_pending(node, site->params))
			sites = bms_add_member(sites, i);
	}
	return sites;
}

/*
 * Asks for the answers of the batch's calls from row from on, stage by
 * stage; sets the row at which the query, having got past a row whose
 * call the service refused, has the rest asked for.
 */
void
batch_prefetch(BatchScanState *node, int from)
{
	bool		parallel = IsInParallelMode();
	bool		asked = true;

	node->ask_limit = node->nrows;
	backend_share_requests(node->shared ? node->shared->nworkers + (parallel_leader_participation ? 1 : 0) : 0);
	PG_TRY();
	{
		for (int stage = 1; stage <= BATCH_MAX_STAGES && asked; stage++)
		{
			Bitmapset  *sites = sites_of_stage(node, stage, parallel);
			int			i = -1;

			if (sites == NULL)
				continue;
			evaluate_ahead(node, sites, parallel, from);
			while (asked && (i = bms_next_member(sites, i)) >= 0)
				asked = ask_service(node, &node->sites[i], parallel, from);
		}
	}
	PG_FINALLY();
	{
		backend_share_requests(0);
	}
	PG_END_TRY();
	node->current = -1;
	node->resume_row = node->ask_limit < node->nrows ? node->ask_limit + 1 : -1;
}
