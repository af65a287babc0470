/*
 * dispatch.c: the answers of the calls a batching node serves.
 *
 * PostgreSQL evaluates the calls as it would row by row; only the function
 * each call's expression step calls is redirected: to redirected_call,
 * which returns the answer the node holds for the row being evaluated if
 * the call's arguments are exactly those asked about, raises the error of
 * a request that failed for it, and otherwise calls the function itself,
 * which makes the row's own request. An answer can therefore only ever be
 * the one the same input gets. The node's own expressions are redirected
 * when it starts; its parent Agg's, once the executor has started the
 * plan. Plans with such a node are not JIT-compiled (plan.c), so the
 * interpreter's steps are all there is to redirect; a step the node does
 * not find (an expression compiled later, as a hash aggregate's that
 * spills, or an EvalPlanQual recheck's) simply makes its call row by row.
 */
#include "postgres.h"

#include "compat.h"

#include "executor/execExpr.h"
#include "executor/nodeAgg.h"
#include "pgstat.h"
#include "nodes/nodeFuncs.h"
#include "utils/datum.h"

#include "batch/node.h"
#include "batch/sites.h"

static bool
same_arguments(BatchSite *held, int row, FunctionCallInfo fcinfo)
{
	for (int i = 0; i < held->nargs; i++)
	{
		Size		at = (Size) row * held->nargs + i;

		if (fcinfo->args[i].isnull != held->arg_nulls[at])
			return false;
		if (!fcinfo->args[i].isnull &&
			!datumIsEqual(fcinfo->args[i].value, held->arg_values[at], held->argbyval[i], held->arglen[i]))
			return false;
	}
	return true;
}

/*
 * A call answered from the batch is still a call of the function in
 * pg_stat_user_functions. A function with a SET clause (every aws_ml
 * function) is called through fmgr's security wrapper, which counts it
 * (its step never does): count it here instead, as the wrapper would.
 */
static void
count_call(BatchSite *site)
{
	LOCAL_FCINFO(fcinfo, 0);
	PgStat_FunctionCallUsage usage;

	if (!site->counts_its_calls)
		return;
	InitFunctionCallInfoData(*fcinfo, &site->counted, 0, InvalidOid, NULL, NULL);
	pgstat_init_function_usage(fcinfo, &usage);
	pgstat_end_function_usage(&usage, true);
}

static Datum
redirected_call(PG_FUNCTION_ARGS)
{
	SiteCall   *context = (SiteCall *) fcinfo->context;
	BatchSite  *site = context->site;
	BatchSite  *held = site->held;
	BatchScanState *node = site->node;
	int			row = node->current;
	Datum		result;

	if (row >= 0 && row < node->nrows && fcinfo->nargs == held->nargs && held->answer != NULL)
	{
		Answer		answer = held->answer[row];
		bool		asked = answer == ANSWER_READY || answer == ANSWER_REFUSED || answer == ANSWER_FAILED;

		if (asked && same_arguments(held, row, fcinfo))
		{
			if (!context->speculative)
				batch_bill_taken(held, row);
			if (answer == ANSWER_READY)
			{
				if (!context->speculative)
					count_call(site);
				fcinfo->isnull = held->nulls[row];
				return held->nulls[row] ? (Datum) 0 : datumCopy(held->values[row], site->resultbyval, site->resultlen);
			}
			if (answer == ANSWER_FAILED && !context->speculative)
				ReThrowError(held->errors[row]);
		}
	}
	if (context->speculative)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("aws_ml: a call evaluated ahead found no answer")));

	/* row by row: the function as the call would have it */
	fcinfo->context = NULL;
	PG_TRY();
	{
		result = site->function(fcinfo);
	}
	PG_FINALLY();
	{
		fcinfo->context = (Node *) context;
	}
	PG_END_TRY();
	return result;
}

static bool
is_function_step(ExprState *state, ExprEvalStep *op)
{
	switch (ExecEvalStepOp(state, op))
	{
		case EEOP_FUNCEXPR:
		case EEOP_FUNCEXPR_STRICT:
		case EEOP_FUNCEXPR_FUSAGE:
		case EEOP_FUNCEXPR_STRICT_FUSAGE:
			return true;
		default:
			return false;
	}
}

/*
 * The site a step's call belongs to: the live call itself (identity), or,
 * in the expressions evaluated ahead, which planning copied, the first
 * site whose planned call is equal to it. NULL: none.
 */
static BatchSite *
site_of(BatchScanState *node, FuncExpr *call, bool ahead)
{
	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		if (ahead ? equal(site->planned, call) : site->call == call)
			return site;
	}
	return NULL;
}

/*
 * Redirects the calls of state that belong to node's sites: live (the
 * evaluation the query sees) or ahead (asking ahead's). Returns the
 * indexes of the sites found.
 */
Bitmapset *
batch_redirect(ExprState *state, BatchScanState *node, bool ahead)
{
	Bitmapset  *found = NULL;

	if (state == NULL)
		return NULL;
	for (int i = 0; i < state->steps_len; i++)
	{
		ExprEvalStep *op = &state->steps[i];
		BatchSite  *site;

		if (!is_function_step(state, op) || op->d.func.finfo->fn_expr == NULL ||
			!IsA(op->d.func.finfo->fn_expr, FuncExpr))
			continue;
		site = site_of(node, (FuncExpr *) op->d.func.finfo->fn_expr, ahead);
		if (site == NULL || op->d.func.fcinfo_data->context != NULL)
			continue;
		if (site->function == NULL)
		{
			site->function = op->d.func.fn_addr;
			/* fmgr's security wrapper: the step never counts the call, the wrapper does */
			site->counts_its_calls = op->d.func.finfo->fn_stats == TRACK_FUNC_ALL;
		}
		else if (site->function != op->d.func.fn_addr)
			continue;
		op->d.func.fn_addr = redirected_call;
		op->d.func.fcinfo_data->context = (Node *) (ahead ? &site->ahead : &site->live);
		site->redirected |= !ahead;
		found = bms_add_member(found, site - node->sites);
	}
	return found;
}

/* Marks the sites whose answers are to be asked for: those of a call redirected. */
void
batch_mark_wanted(BatchScanState *node)
{
	for (int i = 0; i < node->nsites; i++)
	{
		if (node->sites[i].redirected)
			node->sites[i].held->wanted = true;
	}
}

/* Redirects the calls in the aggregates' arguments of agg, which node serves. */
static void
attach_aggregates(BatchScanState *node, AggState *agg)
{
	Agg		   *plan = (Agg *) agg->ss.ps.plan;
	List	   *calls = batch_calls_of_aggregates(plan->plan.targetlist, plan->plan.qual);
	ListCell   *lc;

	if (node->off || list_length(calls) != node->nsites)
		return;
	foreach(lc, calls)
		node->sites[foreach_current_index(lc)].call = lfirst(lc);
	for (int phase = 0; phase < agg->numphases; phase++)
		(void) batch_redirect(agg->phases[phase].evaltrans, node, false);
	batch_mark_wanted(node);
}

/* The documents a row of node may have asked for: one a site whose answers it asks for. */
int
batch_document_sites(BatchScanState *node)
{
	int			count = 0;

	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		count += site->held == site && site->wanted && (site->flags & BATCH_SITE_SPECULABLE);
	}
	return count;
}

static bool
is_batch_node(PlanState *planstate)
{
	return planstate != NULL && IsA(planstate->plan, CustomScan) &&
		((CustomScan *) planstate->plan)->methods == &batch_scan_methods;
}

typedef struct Attach
{
	List	   *nodes;			/* the batching nodes found */
	int			documents;		/* their document sites */
} Attach;

/* Each batching node learns the Agg whose calls it serves, or the Limit it passes the bound of. */
static bool
attach_walker(PlanState *planstate, void *context)
{
	Attach	   *attach = context;
	PlanState  *child;

	if (planstate == NULL)
		return false;
	child = outerPlanState(planstate);
	if (is_batch_node(child))
	{
		BatchScanState *node = (BatchScanState *) child;

		if (IsA(planstate, AggState) && node->serves == BATCH_SERVES_PARENT)
			attach_aggregates(node, (AggState *) planstate);
		if (IsA(planstate, LimitState))
			node->limit = (LimitState *) planstate;
	}
	if (is_batch_node(planstate))
		attach->nodes = lappend(attach->nodes, planstate);
	return planstate_tree_walker(planstate, attach_walker, context);
}

/*
 * Once the executor has started a plan: the nodes that serve their parents'
 * calls find them, and the plan's batching nodes share the bill's slack,
 * one request's worth, among the documents a row of each may ask for.
 */
void
batch_attach_parents(PlanState *root)
{
	Attach		attach = {NIL, 0};
	ListCell   *lc;

	if (root == NULL)
		return;
	(void) attach_walker(root, &attach);
	foreach(lc, attach.nodes)
		attach.documents += batch_document_sites(lfirst(lc));
	foreach(lc, attach.nodes)
		((BatchScanState *) lfirst(lc))->slack = Max(1, BATCH_BILL_SLACK / Max(attach.documents, 1));
}
