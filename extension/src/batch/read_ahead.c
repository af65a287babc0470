/*
 * read_ahead.c: whether a batching node may read rows ahead of the query.
 *
 * A batching node reads a batch of rows from its child before the query
 * uses them. That is unobservable when what the child evaluates for each
 * row has no effect but aws_ml's own requests (whose bill scan.c bounds),
 * and when it neither locks nor writes: anything volatile evaluated there
 * would run for rows the query may never use, and ahead of what the query
 * evaluates above for the rows before them. A node that reads its whole
 * input before its first row (a sort, a hash, a plain or hashed aggregate)
 * ends the walk down; so does a Gather, whose workers read ahead of the
 * query anyway.
 */
#include "postgres.h"

#include "compat.h"

#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/lsyscache.h"

#include "batch/plan.h"

static bool
is_volatile(Oid function, void *context)
{
	return func_volatile(function) == PROVOLATILE_VOLATILE;
}

/* Whether evaluating node has an effect but aws_ml's calls' requests. */
static bool
has_effect(Node *node, Rewrite *rewrite)
{
	if (node == NULL)
		return false;
	if (batch_is_call(node))
		return expression_tree_walker(node, has_effect, rewrite);
	if (IsA(node, NextValueExpr) || check_functions_in_node(node, is_volatile, NULL))
		return true;
	if (IsA(node, SubPlan) &&
		!batch_reads_ahead_unobservably(list_nth(rewrite->stmt->subplans, ((SubPlan *) node)->plan_id - 1), rewrite))
		return true;
	return expression_tree_walker(node, has_effect, rewrite);
}

/* The expressions a plan node evaluates for its rows (or for each rescan). */
static List *
node_expressions(Plan *plan, bool *known)
{
	List	   *exprs = list_make2(plan->targetlist, plan->qual);

	*known = true;
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_SubqueryScan:
		case T_CteScan:
		case T_WorkTableScan:
		case T_NamedTuplestoreScan:
		case T_Material:
		case T_Memoize:
		case T_Append:
		case T_MergeAppend:
		case T_RecursiveUnion:
		case T_Unique:
		case T_Group:
		case T_Agg:
		case T_WindowAgg:
		case T_SetOp:
		case T_IncrementalSort:
		case T_ProjectSet:
			break;
		case T_Result:
			exprs = lappend(exprs, ((Result *) plan)->resconstantqual);
			break;
		case T_IndexScan:
			exprs = lappend(exprs, ((IndexScan *) plan)->indexqual);
			exprs = lappend(exprs, ((IndexScan *) plan)->indexorderby);
			break;
		case T_IndexOnlyScan:
			exprs = lappend(exprs, ((IndexOnlyScan *) plan)->indexqual);
			exprs = lappend(exprs, ((IndexOnlyScan *) plan)->indexorderby);
			break;
		case T_BitmapIndexScan:
			exprs = lappend(exprs, ((BitmapIndexScan *) plan)->indexqual);
			break;
		case T_BitmapHeapScan:
			exprs = lappend(exprs, ((BitmapHeapScan *) plan)->bitmapqualorig);
			break;
		case T_BitmapAnd:
		case T_BitmapOr:
			break;
		case T_TidScan:
			exprs = lappend(exprs, ((TidScan *) plan)->tidquals);
			break;
		case T_TidRangeScan:
			exprs = lappend(exprs, ((TidRangeScan *) plan)->tidrangequals);
			break;
		case T_FunctionScan:
			exprs = lappend(exprs, ((FunctionScan *) plan)->functions);
			break;
		case T_TableFuncScan:
			exprs = lappend(exprs, ((TableFuncScan *) plan)->tablefunc);
			break;
		case T_ValuesScan:
			exprs = lappend(exprs, ((ValuesScan *) plan)->values_lists);
			break;
		case T_NestLoop:
			exprs = lappend(exprs, ((Join *) plan)->joinqual);
			break;
		case T_MergeJoin:
			exprs = lappend(exprs, ((Join *) plan)->joinqual);
			exprs = lappend(exprs, ((MergeJoin *) plan)->mergeclauses);
			break;
		case T_HashJoin:
			exprs = lappend(exprs, ((Join *) plan)->joinqual);
			exprs = lappend(exprs, ((HashJoin *) plan)->hashclauses);
			exprs = lappend(exprs, ((HashJoin *) plan)->hashkeys);
			break;
		case T_Hash:
			exprs = lappend(exprs, ((Hash *) plan)->hashkeys);
			break;
		case T_Limit:
			exprs = lappend(exprs, ((Limit *) plan)->limitOffset);
			exprs = lappend(exprs, ((Limit *) plan)->limitCount);
			break;
		case T_Sort:
			break;
		case T_CustomScan:
			if (((CustomScan *) plan)->methods != &batch_scan_methods)
				*known = false;
			exprs = lappend(exprs, ((CustomScan *) plan)->custom_scan_tlist);
			break;
		default:
			*known = false;
			break;
	}
	return exprs;
}

typedef struct ReadAhead
{
	Rewrite    *rewrite;
	bool		unobservable;
} ReadAhead;

static void
read_ahead_child(Plan **plan, void *context)
{
	ReadAhead  *read_ahead = context;

	read_ahead->unobservable &= batch_reads_ahead_unobservably(*plan, read_ahead->rewrite);
}

/*
 * Whether reading more rows from plan than the query uses is unobservable:
 * what it evaluates per row has no effect (but aws_ml's requests), and it
 * neither locks nor writes. A node that reads its whole input before its
 * first row (a sort, a hash, a plain or hashed aggregate) ends the walk;
 * so does a Gather, whose workers read ahead of the query anyway.
 */
bool
batch_reads_ahead_unobservably(Plan *plan, Rewrite *rewrite)
{
	ReadAhead	read_ahead = {rewrite, true};
	bool		known;
	List	   *exprs;

	if (plan == NULL)
		return true;
	check_stack_depth();
	switch (nodeTag(plan))
	{
		case T_Sort:
		case T_Hash:
		case T_Gather:
		case T_GatherMerge:
			return true;
		case T_Agg:
			if (((Agg *) plan)->aggstrategy == AGG_PLAIN || ((Agg *) plan)->aggstrategy == AGG_HASHED)
				return true;
			break;
		case T_SetOp:
			if (((SetOp *) plan)->strategy == SETOP_HASHED)
				return true;
			break;
		case T_CteScan:
			if (!batch_reads_ahead_unobservably(list_nth(rewrite->stmt->subplans, ((CteScan *) plan)->ctePlanId - 1),
										  rewrite))
				return false;
			break;
		default:
			break;
	}
	exprs = node_expressions(plan, &known);
	if (!known || has_effect((Node *) exprs, rewrite))
		return false;
	batch_for_each_child(plan, read_ahead_child, &read_ahead);
	return read_ahead.unobservable;
}

/*
 * Whether reading ahead of the query from N' is unobservable: N' evaluates
 * its leaves (tlist), the quals it keeps and its own other expressions,
 * then its children's.
 */
bool
batch_reads_ahead_below(Plan *plan, List *tlist, List *joinqual, List *qual, Rewrite *rewrite)
{
	ReadAhead	read_ahead = {rewrite, true};
	bool		known;
	List	   *exprs;

	exprs = node_expressions(plan, &known);
	linitial(exprs) = tlist;
	lsecond(exprs) = qual;
	if (IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin))
		lthird(exprs) = joinqual;
	if (!known || has_effect((Node *) exprs, rewrite))
		return false;
	if (IsA(plan, Agg) && (((Agg *) plan)->aggstrategy == AGG_PLAIN || ((Agg *) plan)->aggstrategy == AGG_HASHED))
		return true;
	batch_for_each_child(plan, read_ahead_child, &read_ahead);
	return read_ahead.unobservable;
}
