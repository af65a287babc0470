/*
 * plan.c: where batching nodes go, in finished plans.
 *
 * A planner hook walks each finished plan and puts a batching node (B)
 * where a plan node evaluates calls of batched functions for each of its
 * rows, in one of three shapes (shapes.c); only where reading rows ahead of
 * the query is unobservable (read_ahead.c) and at least one call can be
 * asked ahead (sites.c). Everything else is left as it is: its calls are
 * made row by row.
 *
 * A plan made before the module was loaded (the statement whose planning
 * loaded it, for one) is rewritten, as a copy, when the executor starts
 * it. Plans without a call of a batched function are never changed. A plan
 * with a batching node is not JIT-compiled: dispatch.c redirects the calls
 * of the interpreted expressions.
 */
#include "postgres.h"

#include "compat.h"

#include "access/parallel.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "jit/jit.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "batch/plan.h"
#include "batch/sites.h"

bool		batch_mode = true;

static planner_hook_type previous_planner = NULL;
static ExecutorStart_hook_type previous_executor_start = NULL;

Var *
batch_column_var(int varno, int attno, Node *expr)
{
	return makeVar(varno, attno, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
}

/* ---------------------------------------------------------------------
 * The node
 * ---------------------------------------------------------------------
 */

/* Copies from's costs and parameters to to, a node put above it or in its place. */
static void
copy_plan_fields(Plan *to, Plan *from, Rewrite *rewrite)
{
	to->startup_cost = from->startup_cost;
	to->total_cost = from->total_cost;
	to->plan_rows = from->plan_rows;
	to->plan_width = from->plan_width;
	to->parallel_safe = from->parallel_safe;
	to->plan_node_id = rewrite->next_plan_node_id++;
	to->extParam = bms_copy(from->extParam);
	to->allParam = bms_copy(from->allParam);
}

CustomScan *
batch_make_scan(NewNode *node, Rewrite *rewrite)
{
	CustomScan *scan = makeNode(CustomScan);
	List	   *private = list_make3(makeInteger(node->serves), makeInteger(list_length(node->child->targetlist)),
									 makeInteger(list_length(node->computed)));
	ListCell   *lc;

	copy_plan_fields(&scan->scan.plan, node->source, rewrite);
	if (node->serves == BATCH_SERVES_OWN)
	{
		/* the query level's InitPlans stay at its top, which B now is */
		scan->scan.plan.initPlan = node->source->initPlan;
		node->source->initPlan = NIL;
	}
	/* to collect the workers' Batch Processing counts */
	scan->scan.plan.parallel_aware = rewrite->under_gather > 0;
	scan->scan.plan.targetlist = node->targetlist;
	scan->scan.plan.qual = node->quals;
	scan->scan.plan.lefttree = node->child;
	scan->methods = &batch_scan_methods;
	foreach(lc, node->child->targetlist)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, lc);

		scan->custom_scan_tlist = lappend(scan->custom_scan_tlist,
										  makeTargetEntry((Expr *) batch_column_var(OUTER_VAR, entry->resno,
																			  (Node *) entry->expr),
														  entry->resno, NULL, false));
	}
	foreach(lc, node->computed)
		scan->custom_scan_tlist = lappend(scan->custom_scan_tlist,
										  makeTargetEntry(lfirst(lc), list_length(scan->custom_scan_tlist) + 1,
														  NULL, false));
	foreach(lc, node->sites)
	{
		PlannedSite *site = lfirst(lc);

		private = lappend(private, makeInteger(site->kind));
		private = lappend(private, makeInteger(site->stage));
		private = lappend(private, makeInteger(site->flags));
		private = lappend(private, makeInteger(site->same_as));
		scan->custom_exprs = lappend(scan->custom_exprs,
									 copyObject(list_make2(site->condition, site->call)));
	}
	scan->custom_private = private;
	rewrite->changed = true;
	return scan;
}

bool
batch_any_speculable(List *sites)
{
	ListCell   *lc;

	foreach(lc, sites)
	{
		if (((PlannedSite *) lfirst(lc))->flags & BATCH_SITE_SPECULABLE)
			return true;
	}
	return false;
}

static bool
is_batch_scan(Plan *plan)
{
	return plan != NULL && IsA(plan, CustomScan) && ((CustomScan *) plan)->methods == &batch_scan_methods;
}

/* A Material node over child, for a merge join's inner side, which marks and restores. */
static Plan *
material_over(Plan *child, Rewrite *rewrite)
{
	Material   *material = makeNode(Material);
	ListCell   *lc;

	copy_plan_fields(&material->plan, child, rewrite);
	foreach(lc, child->targetlist)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, lc);
		TargetEntry *copy = flatCopyTargetEntry(entry);

		copy->expr = (Expr *) batch_column_var(OUTER_VAR, entry->resno, (Node *) entry->expr);
		material->plan.targetlist = lappend(material->plan.targetlist, copy);
	}
	material->plan.lefttree = child;
	return (Plan *) material;
}

/* ---------------------------------------------------------------------
 * The walk
 * ---------------------------------------------------------------------
 */

/* Calls walker(&child) for each child plan of plan. */
void
batch_for_each_child(Plan *plan, void (*walker) (Plan **, void *), void *context)
{
	List	   *children = NIL;
	ListCell   *lc;

	if (plan->lefttree)
		walker(&plan->lefttree, context);
	if (plan->righttree)
		walker(&plan->righttree, context);
	switch (nodeTag(plan))
	{
		case T_Append:
			children = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			children = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_BitmapAnd:
			children = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			children = ((BitmapOr *) plan)->bitmapplans;
			break;
		case T_CustomScan:
			children = ((CustomScan *) plan)->custom_plans;
			break;
		case T_SubqueryScan:
			walker(&((SubqueryScan *) plan)->subplan, context);
			break;
		default:
			break;
	}
	foreach(lc, children)
		walker((Plan **) &lfirst(lc), context);
}

static void
highest_plan_node_id(Plan **plan, void *context)
{
	int		   *highest = context;

	*highest = Max(*highest, (*plan)->plan_node_id);
	batch_for_each_child(*plan, highest_plan_node_id, context);
}

static bool has_batch_scan(Plan *plan);

static void
mark_batch_scan(Plan **plan, void *context)
{
	*(bool *) context |= has_batch_scan(*plan);
}

static bool
has_batch_scan(Plan *plan)
{
	bool		found = is_batch_scan(plan);

	batch_for_each_child(plan, mark_batch_scan, &found);
	return found;
}

static Plan *rewrite_plan(Plan *plan, Rewrite *rewrite);

static void
rewrite_child(Plan **child, void *context)
{
	*child = rewrite_plan(*child, context);
}

static Plan *
rewrite_plan(Plan *plan, Rewrite *rewrite)
{
	Plan	   *lateral;

	if (plan == NULL)
		return NULL;
	check_stack_depth();
	if (IsA(plan, NestLoop) &&
		(lateral = batch_lateral_function((NestLoop *) plan, rewrite, rewrite_plan)) != NULL)
		return lateral;
	rewrite->under_gather += IsA(plan, Gather) || IsA(plan, GatherMerge);
	batch_for_each_child(plan, rewrite_child, rewrite);
	if (IsA(plan, Agg))
		batch_aggregates((Agg *) plan, rewrite);
	rewrite->under_gather -= IsA(plan, Gather) || IsA(plan, GatherMerge);

	/* a merge join marks and restores its inner side; B cannot */
	if (IsA(plan, MergeJoin) && !((MergeJoin *) plan)->skip_mark_restore && is_batch_scan(innerPlan(plan)))
		innerPlan(plan) = material_over(innerPlan(plan), rewrite);
	return batch_own(plan, rewrite);
}

/*
 * Rewrites stmt in place; whether it changed it. A cursor that may fetch
 * backward is left as it is: a batching node cannot go back, and a
 * Material node above it would hide the table's scan from WHERE CURRENT
 * OF. That is a SCROLL cursor, and one declared without NO SCROLL
 * (DECLARE, a PL/pgSQL cursor variable), which PostgreSQL makes scrollable
 * when its plan can scan backward.
 */
static bool
rewrite_statement(PlannedStmt *stmt, bool backward)
{
	Rewrite		rewrite = {stmt};
	ListCell   *lc;
	int			highest = 0;

	if (stmt->commandType == CMD_UTILITY || backward || !batch_functions_in(stmt->invalItems))
		return false;
	highest_plan_node_id(&stmt->planTree, &highest);
	foreach(lc, stmt->subplans)
	{
		if (lfirst(lc) != NULL)
			highest_plan_node_id((Plan **) &lfirst(lc), &highest);
	}
	rewrite.next_plan_node_id = highest + 1;

	stmt->planTree = rewrite_plan(stmt->planTree, &rewrite);
	foreach(lc, stmt->subplans)
		lfirst(lc) = rewrite_plan(lfirst(lc), &rewrite);
	if (!rewrite.changed)
		return false;
	/* the interpreter's calls are redirected (dispatch.c), not compiled ones */
	stmt->jitFlags &= ~PGJIT_EXPR;
	return true;
}

static PlannedStmt *
batch_planner(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	PlannedStmt *stmt = previous_planner
		? previous_planner(parse, query_string, cursor_options, bound_params)
		: standard_planner(parse, query_string, cursor_options, bound_params);

	if (batch_mode && !IsParallelWorker())
		rewrite_statement(stmt, (cursor_options & CURSOR_OPT_SCROLL) ||
						  ((cursor_options & CURSOR_OPT_FAST_PLAN) && !(cursor_options & CURSOR_OPT_NO_SCROLL)));
	return stmt;
}

/*
 * A plan made before the module was loaded (or while aws_ml.batch_mode was
 * off) is rewritten here, as a copy: it may be a cached plan, shared by
 * other executions. Once the executor has started the plan, the nodes that
 * serve their parents' calls learn their parents (dispatch.c).
 */
static void
batch_executor_start(QueryDesc *query, int eflags)
{
	PlannedStmt *stmt = query->plannedstmt;

	if (batch_mode && !IsParallelWorker() && stmt->commandType != CMD_UTILITY &&
		batch_functions_in(stmt->invalItems) && !has_batch_scan(stmt->planTree))
	{
		MemoryContext copy_context = AllocSetContextCreate(GetMemoryChunkContext(query), "aws_ml batch plan",
														   ALLOCSET_DEFAULT_SIZES);
		MemoryContext caller = MemoryContextSwitchTo(copy_context);
		PlannedStmt *copy = copyObject(stmt);

		if (rewrite_statement(copy, (eflags & EXEC_FLAG_BACKWARD) != 0))
			query->plannedstmt = copy;
		MemoryContextSwitchTo(caller);
		if (query->plannedstmt != copy)
			MemoryContextDelete(copy_context);
	}
	if (previous_executor_start)
		previous_executor_start(query, eflags);
	else
		standard_ExecutorStart(query, eflags);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		batch_attach_parents(query->planstate);
}

void
batch_plan_init(void)
{
	previous_planner = planner_hook;
	planner_hook = batch_planner;
	previous_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = batch_executor_start;
}
