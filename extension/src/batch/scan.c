/*
 * scan.c: the Custom Scan of batch mode ("AwsMlBatch").
 *
 * It reads a batch of rows from its child into memory of its own, has the
 * batch's calls asked for (prefetch.c), and returns the rows one by one:
 * serving its own calls, it evaluates for each row its computed columns,
 * its quals and its targetlist, as the node it replaced would; serving its
 * parent's, it returns the row as it is, and the parent evaluates its
 * calls. Either way each call is evaluated in its place and finds its
 * answer there (dispatch.c).
 *
 * The bill: the rows a batch reads are rows whose calls may be asked for
 * before the query has used them. Batches start small and grow with the
 * inputs the query's calls have taken, over every rescan of the node: the
 * inputs asked for never exceed twice those taken plus the node's slack,
 * its share of one request's worth (25 documents) among all the calls the
 * plan asks ahead, however early the query stops (bill.c). A batch holds at most 1,000 rows (Aurora: "the
 * optimizer chooses"), a constant max_rows_per_batch's, and work_mem of
 * rows. Under aws_ml.batch_mode = off at execution it reads one row at a
 * time and redirects nothing: row by row.
 */
#include "postgres.h"

#include "compat.h"

#include "access/parallel.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "portability/instr_time.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "pgstat.h"

#include "batch/node.h"
#include "batch/sites.h"

/* Rows a batch holds at most when no max_rows_per_batch says otherwise. */
#define MAX_BATCH_ROWS 1000

/*
 * The track_functions level from which a call of function counts, as fmgr
 * sets it for the function itself: a C function's with track_functions =
 * all, another language's unless it is off.
 */
static int
tracked_from(Oid function)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	int			level;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", function);
	level = ((Form_pg_proc) GETSTRUCT(tuple))->prolang == ClanguageId ? TRACK_FUNC_PL : TRACK_FUNC_OFF;
	ReleaseSysCache(tuple);
	return level;
}

static void
init_site(BatchScanState *node, BatchSite *site, List *private, int n, List *planned)
{
	int			at = BATCH_PRIVATE_SITES + n * BATCH_PRIVATE_PER_SITE;
	int			same_as = intVal(list_nth(private, at + 3));

	site->node = node;
	site->kind = intVal(list_nth(private, at));
	site->stage = intVal(list_nth(private, at + 1));
	site->flags = intVal(list_nth(private, at + 2));
	site->held = same_as >= 0 ? &node->sites[same_as] : site;
	site->planned = lsecond(planned);
	site->nargs = list_length(site->planned->args);
	site->strict = func_strict(site->planned->funcid);
	site->counted.fn_oid = site->planned->funcid;
	site->counted.fn_stats = tracked_from(site->planned->funcid);
	get_typlenbyval(exprType((Node *) site->planned), &site->resultlen, &site->resultbyval);
	site->live.type = T_ExtensibleNode;
	site->live.site = site;
	site->ahead.type = T_ExtensibleNode;
	site->ahead.site = site;
	site->ahead.speculative = true;
}

/*
 * The scan below whose current row is the node's: WHERE CURRENT OF can find
 * the rows through the node.  Result, Limit and SubqueryScan return their
 * input's current row, as execCurrent.c descends through them.
 */
static ScanState *
row_source(PlanState *plan)
{
	switch (nodeTag(plan))
	{
		case T_SeqScanState:
		case T_SampleScanState:
		case T_IndexScanState:
		case T_IndexOnlyScanState:
		case T_BitmapHeapScanState:
		case T_TidScanState:
		case T_TidRangeScanState:
			return (ScanState *) plan;
		case T_ResultState:
		case T_LimitState:
			return outerPlanState(plan) ? row_source(outerPlanState(plan)) : NULL;
		case T_SubqueryScanState:
			return row_source(((SubqueryScanState *) plan)->subplan);
		default:
			return NULL;
	}
}

static ScanState *
scanned_rows(BatchScanState *node)
{
	if (node->serves != BATCH_SERVES_OWN || node->ncomputed > 0)
		return NULL;
	return row_source(outerPlanState(node));
}

static void
begin_batch_scan(CustomScanState *css, EState *estate, int eflags)
{
	BatchScanState *node = (BatchScanState *) css;
	CustomScan *scan = (CustomScan *) css->ss.ps.plan;
	List	   *private = scan->custom_private;
	List	   *computed = NIL;
	List	   *calls;

	/* a Material above this node fetches backward and restores marks */
	outerPlanState(node) = ExecInitNode(outerPlan(scan), estate, eflags & ~(EXEC_FLAG_BACKWARD | EXEC_FLAG_MARK));
	node->child_row = ExecInitExtraTupleSlot(estate, ExecGetResultType(outerPlanState(node)),
											 &TTSOpsMinimalTuple);
	node->serves = intVal(list_nth(private, BATCH_PRIVATE_SERVES));
	node->nchild = intVal(list_nth(private, BATCH_PRIVATE_CHILD_COLUMNS));
	node->ncomputed = intVal(list_nth(private, BATCH_PRIVATE_COMPUTED_COLUMNS));
	node->nsites = list_length(scan->custom_exprs);
	node->sites = palloc0(sizeof(BatchSite) * Max(node->nsites, 1));
	node->off = !batch_mode;
	node->current = -1;
	node->cap = MAX_BATCH_ROWS;
	node->slack = BATCH_BILL_SLACK;

	node->computed = palloc0(sizeof(ExprState *) * Max(node->ncomputed, 1));
	node->computed_ahead = palloc0(sizeof(ExprState *) * Max(node->ncomputed, 1));
	node->computed_sites = palloc0(sizeof(Bitmapset *) * Max(node->ncomputed, 1));
	for (int c = 0; c < node->ncomputed; c++)
	{
		Expr	   *expr = list_nth_node(TargetEntry, scan->custom_scan_tlist, node->nchild + c)->expr;

		computed = lappend(computed, expr);
		node->computed[c] = ExecInitExpr(expr, &css->ss.ps);
	}
	for (int i = 0; i < node->nsites; i++)
		init_site(node, &node->sites[i], private, i, list_nth(scan->custom_exprs, i));
	for (int i = 0; i < node->nsites; i++)
		batch_site_init_ahead(node, &node->sites[i], list_nth(scan->custom_exprs, i));
	for (int c = 0; c < node->ncomputed; c++)
		node->computed_ahead[c] = ExecInitExpr(list_nth(computed, c), &css->ss.ps);

	if (node->serves == BATCH_SERVES_OWN && !node->off)
	{
		/* the calls this node evaluates: its own (the parent's are found once the plan has started) */
		calls = batch_calls_of_own(computed, scan->scan.plan.qual, scan->scan.plan.targetlist);
		if (list_length(calls) == node->nsites)
		{
			for (int i = 0; i < node->nsites; i++)
				node->sites[i].call = list_nth(calls, i);
			for (int c = 0; c < node->ncomputed; c++)
			{
				(void) batch_redirect(node->computed[c], node, false);
				node->computed_sites[c] = batch_redirect(node->computed_ahead[c], node, true);
			}
			(void) batch_redirect(css->ss.ps.qual, node, false);
			if (css->ss.ps.ps_ProjInfo)
				(void) batch_redirect(&css->ss.ps.ps_ProjInfo->pi_state, node, false);
			batch_mark_wanted(node);
		}
	}
	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		if (site->max_rows > 0)
			node->cap = Min(node->cap, site->max_rows);
	}
	node->scanned = scanned_rows(node);
	if (node->scanned)
		css->ss.ss_currentRelation = node->scanned->ss_currentRelation;
	node->ahead_context = CreateExprContext(estate);
	node->rows_context = CreateExprContext(estate);
	node->batch_context = AllocSetContextCreate(CurrentMemoryContext, "aws_ml batch", ALLOCSET_DEFAULT_SIZES);
}

/* Puts row of the batch into the child's slot and the scan slot's child columns. */
void
batch_load_row(BatchScanState *node, int row)
{
	TupleTableSlot *scan = node->css.ss.ss_ScanTupleSlot;

	ExecStoreMinimalTuple(node->rows[row], node->child_row, false);
	slot_getallattrs(node->child_row);
	ExecClearTuple(scan);
	memcpy(scan->tts_values, node->child_row->tts_values, sizeof(Datum) * node->nchild);
	memcpy(scan->tts_isnull, node->child_row->tts_isnull, sizeof(bool) * node->nchild);
	for (int c = 0; c < node->ncomputed; c++)
		scan->tts_isnull[node->nchild + c] = true;
	ExecStoreVirtualTuple(scan);
	if (node->scanned)
	{
		scan->tts_tid = node->tids[row];
		scan->tts_tableOid = node->table_oids[row];
	}
}

/*
 * The rows a Limit right above takes in this scan, passed on to the child
 * (a Sort then keeps only those, as under the Limit itself); 0: no bound.
 */
static int64
limit_bound(BatchScanState *node)
{
	int64		bound;

	if (node->limit == NULL || node->limit->noCount)
		return 0;
	bound = node->limit->count + node->limit->offset;
	if (node->scan_fetched == 0 && node->css.ss.ps.qual == NULL)
		ExecSetTupleBound(bound, outerPlanState(node));
	return bound;
}

/* The rows the next batch reads: those the bill allows, within a Limit's bound. */
static int
next_batch_rows(BatchScanState *node)
{
	int64		rows;
	int64		bound;

	if (node->off)
		return 1;
	rows = batch_bill_rows(node);
	if ((bound = limit_bound(node)) > 0)
		rows = Min(rows, Max(bound - node->scan_processed, 1));
	return (int) rows;
}

static void
allocate_answers(BatchScanState *node)
{
	int			n = node->nrows;

	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		if (site->held != site || !site->wanted)
			continue;
		site->answer = palloc0(sizeof(char) * n);
		site->arg_values = palloc0(sizeof(Datum) * n * Max(site->nargs, 1));
		site->arg_nulls = palloc0(sizeof(bool) * n * Max(site->nargs, 1));
		if (site->input_types)
			site->csv_lines = palloc0(sizeof(Datum) * n);
		site->input_hashes = palloc0(sizeof(uint64) * n);
		site->values = palloc0(sizeof(Datum) * n);
		site->nulls = palloc0(sizeof(bool) * n);
		site->errors = palloc0(sizeof(ErrorData *) * n);
	}
}

static void
forget_batch(BatchScanState *node)
{
	MemoryContextReset(node->batch_context);
	for (int i = 0; i < node->nsites; i++)
		node->sites[i].answer = NULL;
	node->nrows = node->next = 0;
	node->current = -1;
	node->resume_row = -1;
}

/* Reads the next batch from the child and has its calls asked for. */
static void
fill_batch(BatchScanState *node)
{
	PlanState  *child = outerPlanState(node);
	int			rows = next_batch_rows(node);
	Size		bytes = 0;
	int			allocated = Min(rows, 64);
	MemoryContext caller;
	instr_time	started;
	instr_time	elapsed;

	forget_batch(node);
	caller = MemoryContextSwitchTo(node->batch_context);
	node->rows = palloc(sizeof(MinimalTuple) * allocated);
	node->tids = palloc(sizeof(ItemPointerData) * allocated);
	node->table_oids = palloc(sizeof(Oid) * allocated);
	MemoryContextSwitchTo(caller);
	/* the child runs in the query's memory, as the executor calls it */
	while (node->nrows < rows && bytes < (Size) work_mem * 1024)
	{
		TupleTableSlot *slot = ExecProcNode(child);

		if (TupIsNull(slot))
		{
			node->child_done = true;
			break;
		}
		caller = MemoryContextSwitchTo(node->batch_context);
		if (node->nrows == allocated)
		{
			allocated = Min(rows, allocated * 2);
			node->rows = repalloc(node->rows, sizeof(MinimalTuple) * allocated);
			node->tids = repalloc(node->tids, sizeof(ItemPointerData) * allocated);
			node->table_oids = repalloc(node->table_oids, sizeof(Oid) * allocated);
		}
		node->rows[node->nrows] = ExecCopySlotMinimalTuple(slot);
		if (node->scanned)
		{
			/* the row the scan is on, not its projection */
			TupleTableSlot *scanned = node->scanned->ss_ScanTupleSlot;

			node->tids[node->nrows] = scanned->tts_tid;
			node->table_oids[node->nrows] = scanned->tts_tableOid;
		}
		MemoryContextSwitchTo(caller);
		bytes += node->rows[node->nrows]->t_len;
		node->nrows++;
	}
	node->fetched += node->nrows;
	node->scan_fetched += node->nrows;
	if (node->nrows == 0 || node->off)
		return;
	caller = MemoryContextSwitchTo(node->batch_context);
	allocate_answers(node);
	MemoryContextSwitchTo(caller);
	INSTR_TIME_SET_CURRENT(started);
	batch_prefetch(node, 0);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	batch_count(node, node->nrows, INSTR_TIME_GET_MILLISEC(elapsed));
}

/* The query got past the row whose call the service refused: the rest of the batch's calls. */
static void
resume_batch(BatchScanState *node, int row)
{
	instr_time	started;
	instr_time	elapsed;

	INSTR_TIME_SET_CURRENT(started);
	batch_prefetch(node, row);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	batch_count_more_time(node, INSTR_TIME_GET_MILLISEC(elapsed));
}

/* Evaluates the computed columns of the loaded row, with its calls. */
static void
compute_columns(BatchScanState *node, ExprContext *econtext)
{
	TupleTableSlot *scan = node->css.ss.ss_ScanTupleSlot;

	econtext->ecxt_outertuple = node->child_row;
	for (int c = 0; c < node->ncomputed; c++)
	{
		int			column = node->nchild + c;

		scan->tts_values[column] = ExecEvalExpr(node->computed[c], econtext, &scan->tts_isnull[column]);
	}
}

static TupleTableSlot *
exec_batch_scan(CustomScanState *css)
{
	BatchScanState *node = (BatchScanState *) css;
	ExprContext *econtext = css->ss.ps.ps_ExprContext;
	ProjectionInfo *projection = css->ss.ps.ps_ProjInfo;
	ExprState  *qual = css->ss.ps.qual;

	for (;;)
	{
		while (node->next < node->nrows)
		{
			int			row = node->next++;

			CHECK_FOR_INTERRUPTS();
			if (row == node->resume_row)
				resume_batch(node, row);
			node->current = row;
			node->scan_processed++;
			ResetExprContext(econtext);
			batch_load_row(node, row);
			econtext->ecxt_scantuple = css->ss.ss_ScanTupleSlot;
			if (node->serves == BATCH_SERVES_PARENT)
				return css->ss.ss_ScanTupleSlot;
			compute_columns(node, econtext);
			if (qual && !ExecQual(qual, econtext))
			{
				InstrCountFiltered1(node, 1);
				continue;
			}
			return projection ? ExecProject(projection) : css->ss.ss_ScanTupleSlot;
		}
		if (node->child_done)
		{
			node->current = -1;
			return NULL;
		}
		fill_batch(node);
	}
}

static void
end_batch_scan(CustomScanState *css)
{
	BatchScanState *node = (BatchScanState *) css;

	ExecEndNode(outerPlanState(node));
	MemoryContextDelete(node->batch_context);
}

static void
rescan_batch_scan(CustomScanState *css)
{
	BatchScanState *node = (BatchScanState *) css;
	PlanState  *child = outerPlanState(node);

	forget_batch(node);
	node->child_done = false;
	node->scan_fetched = 0;
	node->scan_processed = 0;
	if (child->chgParam == NULL)
		ExecReScan(child);
}

static const CustomExecMethods batch_exec_methods = {
	.CustomName = BATCH_SCAN_NAME,
	.BeginCustomScan = begin_batch_scan,
	.ExecCustomScan = exec_batch_scan,
	.EndCustomScan = end_batch_scan,
	.ReScanCustomScan = rescan_batch_scan,
	.EstimateDSMCustomScan = batch_estimate_dsm,
	.InitializeDSMCustomScan = batch_initialize_dsm,
	.ReInitializeDSMCustomScan = batch_reinitialize_dsm,
	.InitializeWorkerCustomScan = batch_initialize_worker,
	.ShutdownCustomScan = batch_collect_worker_counts,
	.ExplainCustomScan = batch_explain,
};

static Node *
create_batch_scan_state(CustomScan *scan)
{
	BatchScanState *node = palloc0(sizeof(BatchScanState));

	NodeSetTag(node, T_CustomScanState);
	node->css.methods = &batch_exec_methods;
	return (Node *) node;
}

const CustomScanMethods batch_scan_methods = {
	.CustomName = BATCH_SCAN_NAME,
	.CreateCustomScanState = create_batch_scan_state,
};

void
batch_scan_init(void)
{
	RegisterCustomScanMethods(&batch_scan_methods);
}
