/*
 * prefetch.c: a batch's calls, worked out ahead and asked for (ask.c).
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

#include "compat.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "batch/node.h"
#include "batch/sites.h"
#include "python/backend.h"

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

/*
 * Runs attempt in a subtransaction with an ExprContext that ends with it
 * (the callbacks a failed evaluation registered are dropped, as PL/pgSQL
 * drops them); returns the error it raised, copied into error_memory, or
 * NULL. A cancel is raised.
 */
ErrorData *
batch_in_subtransaction(BatchScanState *node, BatchAttempt attempt, void *arg, MemoryContext error_memory)
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

/* value, copied into the batch's memory. */
Datum
batch_copy_value(BatchScanState *node, Datum value, bool isnull, bool byval, int16 len)
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
	return batch_copy_value(node, PointerGetDatum(line), false, false, -1);
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

		site->arg_values[at] = batch_copy_value(node, value, site->arg_nulls[at], site->argbyval[i], site->arglen[i]);
		any_null |= site->arg_nulls[at];
	}
	if (site->strict && any_null)
	{
		site->answer[row] = ANSWER_SKIPPED;
		return;
	}
	if (site->input_types)
		site->csv_lines[row] = csv_line_of(node, site, row);
	batch_bill_asked(site, row);
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
		ErrorData  *error = batch_in_subtransaction(node, evaluate_rows, &stage, CurrentMemoryContext);

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
				asked = batch_ask_service(node, &node->sites[i], parallel, from);
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
