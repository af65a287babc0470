/*
 * batch_scan.c: the Custom Scan of batch mode ("AwsMlBatch").
 *
 * It reads a batch of rows from its child (at most the batch's rows and
 * work_mem bytes, in a memory context of the batch), evaluates the
 * arguments of each batched call for them, hands each call's arguments for
 * the whole batch to the call's batch-mode form (one PL/Python call, which
 * sends the requests, concurrently where it can), and then returns the rows
 * one by one, each with its calls' results as columns of the scan tuple:
 * first the calls its qual needs, for every row, then the qual, then the
 * targetlist's calls for the rows that passed.
 *
 * A batch-mode form answers the rows up to the first whose call fails
 * because of its input. The node returns the rows before it, then evaluates
 * that row as row-by-row evaluation does, its calls made there, so that a
 * query that never reaches it never fails, and one that does fails with the
 * row function's own error, where row by row it fails; then it makes the
 * calls of the batch's remaining rows.
 *
 * Under aws_ml.batch_mode = off at execution it makes the same calls row by
 * row, as the functions themselves.
 */
#include "postgres.h"

#include "compat.h"

#include "access/detoast.h"
#include "access/parallel.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "catalog/objectaccess.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "batch/batch.h"
#include "sagemaker/csv.h"

/* Rows a batch holds when no max_rows_per_batch says otherwise (Aurora: the optimizer chooses). */
#define AUTOMATIC_BATCH_ROWS 1000

typedef struct BatchCall
{
	BatchFunctionKind kind;
	bool		in_qual;		/* the qual needs its result */
	FuncExpr   *expr;			/* over the scan tuple */
	int			nargs;			/* of the batch-mode form, the rows' numbers not counted */
	ExprState  *args[BATCH_MAX_ARGS];	/* the row function's, but model inputs */
	Oid			argtypes[BATCH_MAX_ARGS];
	int16		arglen[BATCH_MAX_ARGS];
	bool		argbyval[BATCH_MAX_ARGS];
	char		argalign[BATCH_MAX_ARGS];
	int			ninputs;		/* SageMaker's model inputs */
	ExprState **inputs;
	CsvType    *input_types;
	int16		resultlen;
	bool		resultbyval;
	FmgrInfo	rows;			/* the batch-mode form */
	FmgrInfo	function;		/* the row function, for its statistics */
	int			max_rows;		/* a max_rows_per_batch known at the start; 0: none */
} BatchCall;

/* EXPLAIN ANALYZE's Batch Processing: a process's batches */
typedef struct BatchCounts
{
	int64		batches;
	double		size_sum;
	int			size_min;
	int			size_max;
	double		time_sum;
	double		time_min;
	double		time_max;
} BatchCounts;

/* Under a Gather, the workers' counts, each its own (parallel DSM) */
typedef struct SharedBatchCounts
{
	int			nworkers;
	BatchCounts workers[FLEXIBLE_ARRAY_MEMBER];
} SharedBatchCounts;

/* The node's qual and targetlist with some calls made in place, for a failed row. */
typedef struct RowByRow
{
	Bitmapset  *calls;			/* those calls, by index */
	ExprState  *qual;
	ProjectionInfo *projection;
} RowByRow;

typedef struct BatchScanState
{
	CustomScanState css;
	int			nchild;			/* scan tuple: the child's columns, then one a call */
	int			ncalls;
	BatchCall  *calls;
	int			bound;			/* rows the first batch holds at most, 0: no bound */
	int			batch_rows;		/* rows a batch holds at most */
	bool		batch_mode_off;	/* at execution: every row is evaluated as a failed one */
	TupleTableSlot *child_row;
	ExprContext *rows_context;	/* for the batch-mode forms' set-returning protocol */
	MemoryContext batch_context;
	List	   *row_by_row_forms;	/* RowByRow, made when first needed */

	/* the batch */
	MinimalTuple *rows;
	bool	   *passed;			/* the qual */
	bool	   *qual_done;		/* passed holds the qual's result */
	Datum	   *results;		/* a row's results, then the next row's */
	bool	   *result_nulls;
	bool	   *result_done;	/* made: a call after a failed row is not made again */
	int			nrows;
	int			next;
	int			allocated;
	int			failed_row;		/* the first row whose call failed; nrows: none */
	int			resume_row;		/* the row after a failed row: calls still to make from it */
	bool		qual_when_filled;	/* calls for the rows that pass need the qual */
	bool		child_done;
	bool		bounded_batch_done;

	BatchCounts counts;			/* this process's */
	BatchCounts workers;		/* the parallel workers', collected by the leader */
	SharedBatchCounts *shared;
} BatchScanState;

/* The track_functions level from which a call of function counts, as fmgr_info sets it for a function
 * without a SET clause: a C function's with track_functions = all, a PL one's unless it is off. */
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
init_call(BatchScanState *state, BatchCall *call, int kind, bool in_qual, FuncExpr *expr)
{
	const BatchFunction *function = &batch_functions[kind];
	PlanState  *parent = &state->css.ss.ps;
	ListCell   *lc;

	call->kind = kind;
	call->in_qual = in_qual;
	call->expr = expr;
	/* as row-by-row evaluation does when it initializes the call */
	if (pg_proc_aclcheck(expr->funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(expr->funcid));
	InvokeFunctionExecuteHook(expr->funcid);
	call->nargs = function->nargs;
	get_typlenbyval(exprType((Node *) expr), &call->resultlen, &call->resultbyval);
	foreach(lc, expr->args)
	{
		int			i = foreach_current_index(lc);
		Node	   *arg = lfirst(lc);

		if (function->csv_inputs && i >= function->nargs - 1)
			break;
		call->args[i] = ExecInitExpr((Expr *) arg, parent);
		call->argtypes[i] = function->argtypes[i];
		get_typlenbyvalalign(call->argtypes[i], &call->arglen[i], &call->argbyval[i], &call->argalign[i]);
		if (i == function->max_rows_arg && IsA(arg, Const) && !((Const *) arg)->constisnull)
			call->max_rows = Max(DatumGetInt32(((Const *) arg)->constvalue), 0);
	}
	if (function->csv_inputs)
	{
		int			first = function->nargs - 1;

		call->ninputs = list_length(expr->args) - first;
		call->inputs = palloc(sizeof(ExprState *) * call->ninputs);
		call->input_types = palloc(sizeof(CsvType) * call->ninputs);
		for (int i = 0; i < call->ninputs; i++)
		{
			Node	   *input = list_nth(expr->args, first + i);

			call->inputs[i] = ExecInitExpr((Expr *) input, parent);
			csv_type_init(&call->input_types[i], exprType(input), CurrentMemoryContext);
		}
		call->argtypes[first] = TEXTOID;
		get_typlenbyvalalign(TEXTOID, &call->arglen[first], &call->argbyval[first], &call->argalign[first]);
	}
	fmgr_info(batch_rows_function(kind), &call->rows);
	call->function.fn_oid = expr->funcid;
	call->function.fn_stats = tracked_from(expr->funcid);
}

static void
begin_batch_scan(CustomScanState *css, EState *estate, int eflags)
{
	BatchScanState *state = (BatchScanState *) css;
	CustomScan *scan = (CustomScan *) css->ss.ps.plan;
	List	   *private = scan->custom_private;
	Plan	   *child = outerPlan(scan);

	/* a Material above this node fetches backward and restores marks */
	outerPlanState(state) = ExecInitNode(child, estate, eflags & ~(EXEC_FLAG_BACKWARD | EXEC_FLAG_MARK));
	state->child_row = ExecInitExtraTupleSlot(estate, ExecGetResultType(outerPlanState(state)),
											  &TTSOpsMinimalTuple);
	state->nchild = intVal(list_nth(private, BATCH_PRIVATE_CHILD_COLUMNS));
	state->bound = intVal(list_nth(private, BATCH_PRIVATE_BOUND));
	state->ncalls = (list_length(private) - BATCH_PRIVATE_CALLS) / 2;
	state->calls = palloc0(sizeof(BatchCall) * state->ncalls);
	state->batch_mode_off = !batch_mode;
	state->batch_rows = state->batch_mode_off ? 1 : AUTOMATIC_BATCH_ROWS;
	for (int i = 0; i < state->ncalls; i++)
	{
		BatchCall  *call = &state->calls[i];
		TargetEntry *entry = list_nth(scan->custom_scan_tlist, state->nchild + i);

		init_call(state, call, intVal(list_nth(private, BATCH_PRIVATE_CALLS + 2 * i)),
				  intVal(list_nth(private, BATCH_PRIVATE_CALLS + 2 * i + 1)), (FuncExpr *) entry->expr);
		if (call->max_rows > 0 && !state->batch_mode_off)
			state->batch_rows = Min(state->batch_rows, call->max_rows);
	}
	for (int i = 0; i < state->ncalls; i++)
		state->qual_when_filled |= !state->calls[i].in_qual && scan->scan.plan.qual != NIL;
	state->rows_context = CreateExprContext(estate);
	state->batch_context = AllocSetContextCreate(CurrentMemoryContext, "aws_ml batch", ALLOCSET_DEFAULT_SIZES);
}

/* Puts row of the batch into the scan slot: the child's columns and the results so far. */
static TupleTableSlot *
load_row(BatchScanState *state, int row)
{
	TupleTableSlot *scan = state->css.ss.ss_ScanTupleSlot;

	ExecStoreMinimalTuple(state->rows[row], state->child_row, false);
	slot_getallattrs(state->child_row);
	ExecClearTuple(scan);
	memcpy(scan->tts_values, state->child_row->tts_values, sizeof(Datum) * state->nchild);
	memcpy(scan->tts_isnull, state->child_row->tts_isnull, sizeof(bool) * state->nchild);
	memcpy(scan->tts_values + state->nchild, state->results + (Size) row * state->ncalls,
		   sizeof(Datum) * state->ncalls);
	memcpy(scan->tts_isnull + state->nchild, state->result_nulls + (Size) row * state->ncalls,
		   sizeof(bool) * state->ncalls);
	ExecStoreVirtualTuple(scan);
	state->css.ss.ps.ps_ExprContext->ecxt_scantuple = scan;
	return scan;
}

static Datum
evaluate(ExprState *expr, ExprContext *econtext, bool *isnull)
{
	return ExecEvalExprSwitchContext(expr, econtext, isnull);
}

typedef struct BatchCallContext
{
	BatchCall  *call;
	int			count;
} BatchCallContext;

static void
call_context(void *arg)
{
	BatchCallContext *context = arg;
	const BatchFunction *function = &batch_functions[context->call->kind];

	errcontext("aws_ml batch mode: %s.%s for a batch of %d rows", function->schema, function->name,
			   context->count);
}

/*
 * Calls the batch-mode form (set-returning) with args for rows, count of
 * them; it answers them in order, up to the first that fails. Keeps the
 * answers; the first row not answered becomes the batch's failed row, if
 * none before it failed.
 */
static void
call_rows_function(BatchScanState *state, BatchCall *call, Datum *args, int count, int *rows)
{
	LOCAL_FCINFO(fcinfo, BATCH_MAX_ARGS);
	ReturnSetInfo rsinfo = {T_ReturnSetInfo};
	ErrorContextCallback error_context;
	BatchCallContext context = {call, count};
	int			column = call - state->calls;
	int			n = 0;

	rsinfo.econtext = state->rows_context;
	rsinfo.allowedModes = SFRM_ValuePerCall;
	rsinfo.returnMode = SFRM_ValuePerCall;
	InitFunctionCallInfoData(*fcinfo, &call->rows, call->nargs, InvalidOid, NULL, (Node *) &rsinfo);
	for (int i = 0; i < call->nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	error_context.callback = call_context;
	error_context.arg = &context;
	error_context.previous = error_context_stack;
	error_context_stack = &error_context;
	for (;;)
	{
		Datum		value;
		Size		at;
		MemoryContext caller;

		fcinfo->isnull = false;
		rsinfo.isDone = ExprSingleResult;
		value = FunctionCallInvoke(fcinfo);
		if (rsinfo.isDone == ExprEndResult)
			break;
		if (n == count)
			elog(ERROR, "the batch-mode form of %s returned more rows than it was given",
				 batch_functions[call->kind].name);
		at = (Size) rows[n++] * state->ncalls + column;
		state->result_done[at] = true;
		state->result_nulls[at] = fcinfo->isnull;
		caller = MemoryContextSwitchTo(state->batch_context);
		state->results[at] = fcinfo->isnull ? (Datum) 0 : datumCopy(value, call->resultbyval, call->resultlen);
		MemoryContextSwitchTo(caller);
	}
	error_context_stack = error_context.previous;
	if (n < count && rows[n] < state->failed_row)
		state->failed_row = rows[n];
}

/*
 * pg_stat_user_functions (track_functions = all) counts the row function
 * once a row, as row-by-row evaluation does: the batch's time goes to the
 * first row's call (timed around the batch-mode form), none to the others.
 */
static void
call_counted(BatchScanState *state, BatchCall *call, Datum *args, int count, int *rows)
{
	LOCAL_FCINFO(fcinfo, 0);
	PgStat_FunctionCallUsage usage;

	InitFunctionCallInfoData(*fcinfo, &call->function, 0, InvalidOid, NULL, NULL);
	pgstat_init_function_usage(fcinfo, &usage);
	call_rows_function(state, call, args, count, rows);
	pgstat_end_function_usage(&usage, true);
	for (int i = 1; i < count; i++)
	{
		pgstat_init_function_usage(fcinfo, &usage);
		pgstat_end_function_usage(&usage, true);
	}
}

/* The bytes a value takes in the batch-mode form's arrays. */
static Size
value_bytes(Datum value, int16 typlen)
{
	return typlen == -1 ? toast_raw_datum_size(value) : Max(typlen, sizeof(Datum));
}

/*
 * Makes call for rows (count of them, indexes into the batch) through the
 * batch-mode form, in parts of at most work_mem of arguments
 * (a row's own may be more), so that large inputs do not make huge arrays:
 * and at most a quarter of the 1 GB an array may take, whatever work_mem.
 */
static void
make_call(BatchScanState *state, BatchCall *call, int *rows, int count)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	MemoryContext part_context = AllocSetContextCreate(CurrentMemoryContext, "aws_ml batch call",
													   ALLOCSET_DEFAULT_SIZES);
	CsvRow		csv;
	int			start = 0;
	Size		part_bytes = Min((Size) work_mem * 1024, MaxAllocSize / 4);

	while (start < count && rows[start] < state->failed_row)
	{
		MemoryContext caller = MemoryContextSwitchTo(part_context);
		Datum	   *values[BATCH_MAX_ARGS];
		bool	   *nulls[BATCH_MAX_ARGS];
		Datum		args[BATCH_MAX_ARGS];
		Datum	   *inputs = palloc(sizeof(Datum) * Max(call->ninputs, 1));
		bool	   *input_nulls = palloc(sizeof(bool) * Max(call->ninputs, 1));
		int			lbound = 1;
		int			n = 0;
		Size		bytes = 0;

		if (call->ninputs > 0)
			csv_row_init(&csv);
		for (int i = 0; i < call->nargs; i++)
		{
			values[i] = palloc(sizeof(Datum) * (count - start));
			nulls[i] = palloc(sizeof(bool) * (count - start));
		}
		for (; start + n < count && rows[start + n] < state->failed_row && (n == 0 || bytes < part_bytes); n++)
		{
			load_row(state, rows[start + n]);
			for (int i = 0; i < call->nargs; i++)
			{
				if (call->ninputs > 0 && i == call->nargs - 1)
				{
					for (int j = 0; j < call->ninputs; j++)
						inputs[j] = evaluate(call->inputs[j], econtext, &input_nulls[j]);
					values[i][n] = PointerGetDatum(csv_line(&csv, call->input_types, inputs, input_nulls,
															call->ninputs));
					nulls[i][n] = false;
				}
				else
				{
					Datum		value = evaluate(call->args[i], econtext, &nulls[i][n]);

					values[i][n] = nulls[i][n] ? (Datum) 0 : datumCopy(value, call->argbyval[i], call->arglen[i]);
				}
				if (!nulls[i][n])
					bytes += value_bytes(values[i][n], call->arglen[i]);
			}
			ResetExprContext(econtext);
		}
		for (int i = 0; i < call->nargs; i++)
			args[i] = PointerGetDatum(construct_md_array(values[i], nulls[i], 1, &n, &lbound, call->argtypes[i],
														 call->arglen[i], call->argbyval[i], call->argalign[i]));
		call_counted(state, call, args, n, rows + start);
		MemoryContextSwitchTo(caller);
		MemoryContextReset(part_context);
		start += n;
	}
	MemoryContextDelete(part_context);
}

/*
 * Makes the calls the qual needs (in_qual), for every row from first, or
 * the others, for those rows that passed it: up to the batch's failed row,
 * if any.
 */
static void
make_calls(BatchScanState *state, bool in_qual, int first)
{
	int		   *rows = palloc(sizeof(int) * state->nrows);

	for (int i = 0; i < state->ncalls; i++)
	{
		int			count = 0;

		if (state->calls[i].in_qual != in_qual)
			continue;
		for (int row = first; row < state->failed_row; row++)
		{
			if (state->passed[row] && !state->result_done[(Size) row * state->ncalls + i])
				rows[count++] = row;
		}
		if (count > 0)
			make_call(state, &state->calls[i], rows, count);
	}
}

/* Adds the batches of from to into. */
static void
add_counts(BatchCounts *into, const BatchCounts *from)
{
	if (from->batches == 0)
		return;
	into->size_min = into->batches ? Min(into->size_min, from->size_min) : from->size_min;
	into->time_min = into->batches ? Min(into->time_min, from->time_min) : from->time_min;
	into->size_max = Max(into->size_max, from->size_max);
	into->time_max = Max(into->time_max, from->time_max);
	into->batches += from->batches;
	into->size_sum += from->size_sum;
	into->time_sum += from->time_sum;
}

static void
count_batch(BatchScanState *state, int rows, double milliseconds)
{
	BatchCounts batch = {1, rows, rows, rows, milliseconds, milliseconds, milliseconds};

	add_counts(&state->counts, &batch);
	if (IsParallelWorker() && state->shared)
		state->shared->workers[ParallelWorkerNumber] = state->counts;
}

/*
 * Whether row passes the qual. Evaluated when the row is returned, as row
 * by row, unless calls for the rows that pass need it while the batch is
 * filled.
 */
static bool
passes(BatchScanState *state, int row)
{
	ExprState  *qual = state->css.ss.ps.qual;
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	bool		passed;

	if (qual == NULL)
		return true;
	load_row(state, row);
	passed = ExecQual(qual, econtext);
	if (!passed)
		InstrCountFiltered1(state, 1);
	ResetExprContext(econtext);
	return passed;
}

/*
 * Makes the calls of the batch's rows from first on: up to its failed row,
 * if one fails.
 */
static void
call_batch(BatchScanState *state, int first)
{
	MemoryContext caller = MemoryContextSwitchTo(state->batch_context);
	instr_time	started;
	instr_time	elapsed;

	if (state->batch_mode_off)
	{
		state->failed_row = first;
		MemoryContextSwitchTo(caller);
		return;
	}
	INSTR_TIME_SET_CURRENT(started);
	state->failed_row = state->nrows;
	make_calls(state, true, first);
	if (state->qual_when_filled)
	{
		for (int row = first; row < state->failed_row; row++)
		{
			if (!state->qual_done[row])
				state->passed[row] = passes(state, row);
			state->qual_done[row] = true;
		}
	}
	make_calls(state, false, first);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	count_batch(state, state->nrows - first, INSTR_TIME_GET_MILLISEC(elapsed));
	MemoryContextSwitchTo(caller);
}

/* Reads the next batch from the child and makes its calls. */
static void
fill_batch(BatchScanState *state)
{
	PlanState  *child = outerPlanState(state);
	int			rows = state->batch_rows;
	Size		bytes = 0;
	MemoryContext caller;

	if (state->bound > 0 && !state->bounded_batch_done)
		rows = Min(rows, state->bound);
	state->bounded_batch_done = true;
	MemoryContextReset(state->batch_context);
	state->nrows = state->next = 0;
	state->resume_row = -1;
	state->allocated = Min(rows, 64);
	state->rows = MemoryContextAlloc(state->batch_context, sizeof(MinimalTuple) * state->allocated);
	/* the child runs in the query's memory, as the executor calls it */
	while (state->nrows < rows && bytes < (Size) work_mem * 1024)
	{
		TupleTableSlot *slot = ExecProcNode(child);

		if (TupIsNull(slot))
		{
			state->child_done = true;
			break;
		}
		if (state->nrows == state->allocated)
		{
			state->allocated = Min(rows, state->allocated * 2);
			state->rows = repalloc(state->rows, sizeof(MinimalTuple) * state->allocated);
		}
		caller = MemoryContextSwitchTo(state->batch_context);
		state->rows[state->nrows] = ExecCopySlotMinimalTuple(slot);
		MemoryContextSwitchTo(caller);
		bytes += state->rows[state->nrows]->t_len;
		state->nrows++;
	}
	state->failed_row = state->nrows;
	if (state->nrows == 0)
		return;
	caller = MemoryContextSwitchTo(state->batch_context);
	state->passed = palloc(sizeof(bool) * state->nrows);
	memset(state->passed, true, sizeof(bool) * state->nrows);
	state->qual_done = palloc0(sizeof(bool) * state->nrows);
	state->results = palloc0(sizeof(Datum) * state->nrows * state->ncalls);
	state->result_nulls = palloc(sizeof(bool) * state->nrows * state->ncalls);
	memset(state->result_nulls, true, sizeof(bool) * state->nrows * state->ncalls);
	state->result_done = palloc0(sizeof(bool) * state->nrows * state->ncalls);
	MemoryContextSwitchTo(caller);
	call_batch(state, 0);
}

typedef struct WithCalls
{
	BatchScanState *state;
	Bitmapset  *calls;
} WithCalls;

/* node with the columns of those calls replaced by the calls */
static Node *
with_calls(Node *node, WithCalls *context)
{
	BatchScanState *state = context->state;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == INDEX_VAR && ((Var *) node)->varattno > state->nchild &&
		bms_is_member(((Var *) node)->varattno - state->nchild - 1, context->calls))
		return (Node *) copyObject(state->calls[((Var *) node)->varattno - state->nchild - 1].expr);
	return expression_tree_mutator(node, with_calls, context);
}

/* The node's qual and targetlist with calls made in place. */
static RowByRow *
row_by_row_form(BatchScanState *state, Bitmapset *calls)
{
	PlanState  *node = &state->css.ss.ps;
	WithCalls	context = {state, calls};
	MemoryContext caller;
	RowByRow   *form;
	ListCell   *lc;

	foreach(lc, state->row_by_row_forms)
	{
		form = lfirst(lc);
		if (bms_equal(form->calls, calls))
			return form;
	}
	caller = MemoryContextSwitchTo(node->state->es_query_cxt);
	form = palloc(sizeof(RowByRow));
	form->calls = bms_copy(calls);
	form->qual = ExecInitQual((List *) with_calls((Node *) node->plan->qual, &context), node);
	form->projection = ExecBuildProjectionInfo((List *) with_calls((Node *) node->plan->targetlist, &context),
											   node->ps_ExprContext, node->ps_ResultTupleSlot, node,
											   state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor);
	state->row_by_row_forms = lappend(state->row_by_row_forms, form);
	MemoryContextSwitchTo(caller);
	return form;
}

/*
 * The failed row, evaluated as row-by-row evaluation does: its qual (unless
 * the batch evaluated it) and its targetlist, with the calls the batch did
 * not make for it made there. NULL if the qual filters it out.
 */
static TupleTableSlot *
row_by_row(BatchScanState *state, int row)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	Bitmapset  *calls = NULL;
	RowByRow   *form;

	for (int i = 0; i < state->ncalls; i++)
	{
		if (!state->result_done[(Size) row * state->ncalls + i])
			calls = bms_add_member(calls, i);
	}
	form = row_by_row_form(state, calls);
	bms_free(calls);
	ResetExprContext(econtext);
	load_row(state, row);
	if (state->css.ss.ps.qual != NULL &&
		!(state->qual_done[row] ? state->passed[row] : ExecQual(form->qual, econtext)))
	{
		InstrCountFiltered1(state, 1);
		return NULL;
	}
	return ExecProject(form->projection);
}

static TupleTableSlot *
exec_batch_scan(CustomScanState *css)
{
	BatchScanState *state = (BatchScanState *) css;
	ProjectionInfo *projection = css->ss.ps.ps_ProjInfo;

	for (;;)
	{
		while (state->next < state->nrows)
		{
			int			row = state->next++;

			if (row == state->resume_row)
				call_batch(state, row);
			if (row == state->failed_row)
			{
				TupleTableSlot *slot;

				state->resume_row = row + 1;
				slot = row_by_row(state, row);
				if (slot != NULL)
					return slot;
				continue;
			}
			if (state->passed[row] && (state->qual_done[row] || passes(state, row)))
			{
				ResetExprContext(css->ss.ps.ps_ExprContext);
				load_row(state, row);
				return projection ? ExecProject(projection) : css->ss.ss_ScanTupleSlot;
			}
		}
		if (state->child_done)
			return NULL;
		fill_batch(state);
	}
}

static void
end_batch_scan(CustomScanState *css)
{
	BatchScanState *state = (BatchScanState *) css;

	ExecEndNode(outerPlanState(state));
	MemoryContextDelete(state->batch_context);
}

static void
rescan_batch_scan(CustomScanState *css)
{
	BatchScanState *state = (BatchScanState *) css;
	PlanState  *child = outerPlanState(state);

	MemoryContextReset(state->batch_context);
	state->nrows = state->next = 0;
	state->child_done = false;
	state->bounded_batch_done = false;
	if (child->chgParam == NULL)
		ExecReScan(child);
}

static void
explain_batch_scan(CustomScanState *css, List *ancestors, ExplainState *es)
{
	BatchScanState *state = (BatchScanState *) css;

	if (es->verbose)
	{
		List	   *context = set_deparse_context_plan(es->deparse_cxt, css->ss.ps.plan, ancestors);

		for (int i = 0; i < state->ncalls; i++)
			ExplainPropertyText("Batched Call",
								deparse_expression((Node *) state->calls[i].expr, context, true, false), es);
	}
	if (es->analyze)
	{
		StringInfoData line;
		BatchCounts counts = state->counts;
		double		batches;

		add_counts(&counts, &state->workers);
		batches = Max(counts.batches, 1);

		initStringInfo(&line);
		appendStringInfo(&line, "num batches=" INT64_FORMAT " avg/min/max batch size=%.3f/%.3f/%.3f",
						 counts.batches, counts.size_sum / batches, (double) counts.size_min,
						 (double) counts.size_max);
		if (es->timing)
			appendStringInfo(&line, " avg/min/max batch call time=%.3f/%.3f/%.3f",
							 counts.time_sum / batches, counts.time_min, counts.time_max);
		ExplainPropertyText("Batch Processing", line.data, es);
	}
}

/*
 * Under a Gather (parallel_aware): each worker keeps its counts in shared
 * memory, which the leader collects before the Gather releases it.
 */
static Size
estimate_dsm(CustomScanState *css, ParallelContext *pcxt)
{
	return add_size(offsetof(SharedBatchCounts, workers), mul_size(sizeof(BatchCounts), pcxt->nworkers));
}

static void
initialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate)
{
	BatchScanState *state = (BatchScanState *) css;

	state->shared = coordinate;
	memset(state->shared, 0, estimate_dsm(css, pcxt));
	state->shared->nworkers = pcxt->nworkers;
}

/* Adds the workers' counts to the leader's collection and clears them. */
static void
collect_worker_counts(CustomScanState *css)
{
	BatchScanState *state = (BatchScanState *) css;

	if (state->shared == NULL || IsParallelWorker())
		return;
	for (int i = 0; i < state->shared->nworkers; i++)
	{
		add_counts(&state->workers, &state->shared->workers[i]);
		memset(&state->shared->workers[i], 0, sizeof(BatchCounts));
	}
}

static void
reinitialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate)
{
	collect_worker_counts(css);
}

static void
initialize_worker(CustomScanState *css, shm_toc *toc, void *coordinate)
{
	((BatchScanState *) css)->shared = coordinate;
}

static const CustomExecMethods batch_exec_methods = {
	.CustomName = BATCH_SCAN_NAME,
	.BeginCustomScan = begin_batch_scan,
	.ExecCustomScan = exec_batch_scan,
	.EndCustomScan = end_batch_scan,
	.ReScanCustomScan = rescan_batch_scan,
	.EstimateDSMCustomScan = estimate_dsm,
	.InitializeDSMCustomScan = initialize_dsm,
	.ReInitializeDSMCustomScan = reinitialize_dsm,
	.InitializeWorkerCustomScan = initialize_worker,
	.ShutdownCustomScan = collect_worker_counts,
	.ExplainCustomScan = explain_batch_scan,
};

static Node *
create_batch_scan_state(CustomScan *scan)
{
	BatchScanState *state = palloc0(sizeof(BatchScanState));

	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &batch_exec_methods;
	return (Node *) state;
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
