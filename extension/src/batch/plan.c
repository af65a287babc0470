/*
 * plan.c: where batching nodes go, in finished plans.
 *
 * A node is put where a plan node N evaluates calls of batched functions
 * for each of its rows, in one of three shapes:
 *
 * - N's own quals and targetlist call one: N becomes B over N', where N'
 *   computes what N's expressions read (Vars, aggregates, window
 *   functions) and keeps the leading quals that hold no call and can
 *   neither fail nor have an effect; B evaluates the rest of N's quals and
 *   its targetlist, unchanged, over N''s rows. An inner join's join quals
 *   move with its filter, unless the join is inner-unique (it stops at the
 *   first match of all its join quals) or not inner.
 * - A function in FROM reads the rows before it (LATERAL, as in the
 *   reference's "FROM support, aws_comprehend.detect_sentiment(feedback,
 *   'en') s"): the Nested Loop over its Function Scan becomes B over the
 *   outer side, B computing the function's value once a row as a column.
 * - An Agg's aggregates' arguments call one: B goes between the Agg and
 *   its child, returning the child's rows as they are.
 *
 * B reads rows ahead of the query. It is put only where reading ahead is
 * unobservable: the part of the plan below it evaluates nothing volatile
 * but aws_ml's own calls (whose only effect is a request, billed within
 * the bound scan.c keeps), or everything above it reads all its rows
 * anyway (an UPDATE, a plain or hashed aggregate, a sort). And only where
 * at least one call can be asked ahead (sites.c). Everything else is left
 * as it is: its calls are made row by row.
 *
 * This runs on the finished plan in a planner hook; a plan made before the
 * module was loaded (the statement whose planning loaded it, for one) is
 * rewritten, as a copy, when the executor starts it. Plans without a call
 * of a batched function are never changed. A plan with a batching node is
 * not JIT-compiled: dispatch.c redirects the calls of the interpreted
 * expressions.
 */
#include "postgres.h"

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

#include "batch/batch.h"
#include "batch/sites.h"

bool		batch_mode = true;

static planner_hook_type previous_planner = NULL;
static ExecutorStart_hook_type previous_executor_start = NULL;

/* The rewriting of one statement. */
typedef struct Rewrite
{
	PlannedStmt *stmt;
	int			next_plan_node_id;
	int			under_gather;	/* below a Gather: each worker runs its own copy */
	bool		changed;
} Rewrite;

static bool
is_batched_call(Node *node)
{
	return IsA(node, FuncExpr) && batch_function_kind(((FuncExpr *) node)->funcid) >= 0;
}

static Var *
column_var(int varno, int attno, Node *expr)
{
	return makeVar(varno, attno, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
}

/* ---------------------------------------------------------------------
 * Whether reading ahead of the query is unobservable
 * ---------------------------------------------------------------------
 */

static bool reads_ahead_unobservably(Plan *plan, Rewrite *rewrite);

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
	if (is_batched_call(node))
		return expression_tree_walker(node, has_effect, rewrite);
	if (IsA(node, NextValueExpr) || check_functions_in_node(node, is_volatile, NULL))
		return true;
	if (IsA(node, SubPlan) &&
		!reads_ahead_unobservably(list_nth(rewrite->stmt->subplans, ((SubPlan *) node)->plan_id - 1), rewrite))
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

static void for_each_child(Plan *plan, void (*walker) (Plan **, void *), void *context);

typedef struct ReadAhead
{
	Rewrite    *rewrite;
	bool		unobservable;
} ReadAhead;

static void
read_ahead_child(Plan **plan, void *context)
{
	ReadAhead  *read_ahead = context;

	read_ahead->unobservable &= reads_ahead_unobservably(*plan, read_ahead->rewrite);
}

/*
 * Whether reading more rows from plan than the query uses is unobservable:
 * what it evaluates per row has no effect (but aws_ml's requests), and it
 * neither locks nor writes. A node that reads its whole input before its
 * first row (a sort, a hash, a plain or hashed aggregate) ends the walk;
 * so does a Gather, whose workers read ahead of the query anyway.
 */
static bool
reads_ahead_unobservably(Plan *plan, Rewrite *rewrite)
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
			if (!reads_ahead_unobservably(list_nth(rewrite->stmt->subplans, ((CteScan *) plan)->ctePlanId - 1),
										  rewrite))
				return false;
			break;
		default:
			break;
	}
	exprs = node_expressions(plan, &known);
	if (!known || has_effect((Node *) exprs, rewrite))
		return false;
	for_each_child(plan, read_ahead_child, &read_ahead);
	return read_ahead.unobservable;
}

/* Whether plan reads all of its child's rows whenever its own rows are all read. */
static bool
reads_all_of_child(Plan *plan, Plan *child, bool all_read)
{
	switch (nodeTag(plan))
	{
		case T_Sort:
		case T_Hash:
		case T_ModifyTable:
			return true;
		case T_Agg:
			return ((Agg *) plan)->aggstrategy == AGG_PLAIN || ((Agg *) plan)->aggstrategy == AGG_HASHED || all_read;
		case T_SetOp:
			return ((SetOp *) plan)->strategy == SETOP_HASHED || all_read;
		case T_NestLoop:
		case T_HashJoin:
			return child == outerPlan(plan) ? all_read : IsA(plan, HashJoin);
		case T_Result:
		case T_ProjectSet:
		case T_Material:
		case T_IncrementalSort:
		case T_Unique:
		case T_Group:
		case T_WindowAgg:
		case T_Append:
		case T_MergeAppend:
		case T_SubqueryScan:
			return all_read;
		default:
			return false;
	}
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

typedef struct NewNode
{
	BatchServes serves;
	Plan	   *child;
	Plan	   *source;			/* whose costs and place it takes */
	List	   *computed;		/* computed columns, over the child's columns (OUTER_VAR) */
	List	   *targetlist;		/* over its scan tuple */
	List	   *quals;
	List	   *sites;			/* PlannedSite */
} NewNode;

static CustomScan *
make_batch_scan(NewNode *node, Rewrite *rewrite)
{
	CustomScan *scan = makeNode(CustomScan);
	List	   *private = list_make4(makeInteger(node->serves), makeInteger(list_length(node->child->targetlist)),
									 makeInteger(list_length(node->computed)), makeInteger(0));
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
										  makeTargetEntry((Expr *) column_var(OUTER_VAR, entry->resno,
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

static bool
any_speculable(List *sites)
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

		copy->expr = (Expr *) column_var(OUTER_VAR, entry->resno, (Node *) entry->expr);
		material->plan.targetlist = lappend(material->plan.targetlist, copy);
	}
	material->plan.lefttree = child;
	return (Plan *) material;
}

/* ---------------------------------------------------------------------
 * N's own quals and targetlist: B over N'
 * ---------------------------------------------------------------------
 */

/* What N' computes and B reads: the values of N's own inputs. */
static bool
is_leaf(Node *node)
{
	return IsA(node, Var) || IsA(node, Aggref) || IsA(node, GroupingFunc) || IsA(node, WindowFunc);
}

typedef struct Leaves
{
	List	   *tlist;			/* N''s targetlist */
} Leaves;

/* The column of N' (1-based) that holds leaf. */
static int
leaf_column(Leaves *leaves, Node *leaf)
{
	ListCell   *lc;

	foreach(lc, leaves->tlist)
	{
		if (equal(lfirst_node(TargetEntry, lc)->expr, leaf))
			return foreach_current_index(lc) + 1;
	}
	leaves->tlist = lappend(leaves->tlist, makeTargetEntry((Expr *) copyObject(leaf),
														   list_length(leaves->tlist) + 1, NULL, false));
	return list_length(leaves->tlist);
}

static Node *
over_leaves(Node *node, Leaves *leaves)
{
	if (node == NULL)
		return NULL;
	if (is_leaf(node))
		return (Node *) column_var(INDEX_VAR, leaf_column(leaves, node), node);
	return expression_tree_mutator(node, over_leaves, leaves);
}

/* A qual N' can keep: it calls nothing batched and can neither fail nor have an effect. */
static bool
stays_below(Node *qual)
{
	return !batch_calls_in(qual) && !contain_volatile_functions(qual) && !contain_subplans(qual) &&
		!contain_leaked_vars(qual);
}

/*
 * N's quals in the order PostgreSQL evaluates them, and how many of them
 * are join quals: an inner join's join quals come with its filter, unless
 * the join is inner-unique, which stops at the first inner row that
 * satisfies all of them.
 */
static List *
node_quals(Plan *plan, int *njoinquals)
{
	*njoinquals = 0;
	if ((IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin)) &&
		((Join *) plan)->jointype == JOIN_INNER && !((Join *) plan)->inner_unique)
	{
		*njoinquals = list_length(((Join *) plan)->joinqual);
		return list_concat_copy(((Join *) plan)->joinqual, plan->qual);
	}
	return plan->qual;
}

static bool
evaluates_expressions(Plan *plan)
{
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_SubqueryScan:
		case T_FunctionScan:
		case T_ValuesScan:
		case T_TableFuncScan:
		case T_CteScan:
		case T_NamedTuplestoreScan:
		case T_WorkTableScan:
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
		case T_Agg:
		case T_Group:
			return true;
		case T_WindowAgg:
			/* its run condition and qual read its own output by position */
			return plan->qual == NIL && ((WindowAgg *) plan)->runCondition == NIL;
		case T_Result:
			/* without a child it makes one row: nothing to batch */
			return plan->lefttree != NULL;
		default:
			return false;
	}
}

/*
 * Whether reading ahead of the query from N' is unobservable: N' evaluates
 * its leaves (tlist), the quals it keeps and its own other expressions,
 * then its children's.
 */
static bool
reads_ahead_below(Plan *plan, List *tlist, List *joinqual, List *qual, bool all_read, Rewrite *rewrite)
{
	ReadAhead	read_ahead = {rewrite, true};
	bool		known;
	List	   *exprs;

	if (all_read)
		return true;
	exprs = node_expressions(plan, &known);
	linitial(exprs) = tlist;
	lsecond(exprs) = qual;
	if (IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin))
		lthird(exprs) = joinqual;
	if (!known || has_effect((Node *) exprs, rewrite))
		return false;
	if (IsA(plan, Agg) && (((Agg *) plan)->aggstrategy == AGG_PLAIN || ((Agg *) plan)->aggstrategy == AGG_HASHED))
		return true;
	for_each_child(plan, read_ahead_child, &read_ahead);
	return read_ahead.unobservable;
}

/* N becomes B over N' (N changed in place), or stays as it is. */
static Plan *
batch_own(Plan *plan, bool all_read, Rewrite *rewrite)
{
	NewNode		node = {BATCH_SERVES_OWN};
	Leaves		leaves = {NIL};
	int			njoinquals;
	List	   *quals = node_quals(plan, &njoinquals);
	int			kept = 0;
	List	   *joinqual;
	List	   *qual;
	ListCell   *lc;

	if (!evaluates_expressions(plan))
		return plan;
	foreach(lc, quals)
	{
		if (!stays_below(lfirst(lc)))
			break;
		kept++;
	}
	if (!batch_calls_in((Node *) list_copy_tail(quals, kept)) && !batch_calls_in((Node *) plan->targetlist))
		return plan;
	node.quals = (List *) over_leaves((Node *) list_copy_tail(quals, kept), &leaves);
	node.targetlist = (List *) over_leaves((Node *) plan->targetlist, &leaves);
	node.sites = batch_sites_of_own(NIL, node.quals, node.targetlist);
	if (kept < njoinquals)
	{
		joinqual = list_truncate(list_copy(((Join *) plan)->joinqual), kept);
		qual = NIL;
	}
	else
	{
		joinqual = IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin) ? ((Join *) plan)->joinqual : NIL;
		qual = list_truncate(list_copy(plan->qual), kept - njoinquals);
	}
	if (!any_speculable(node.sites) || !reads_ahead_below(plan, leaves.tlist, joinqual, qual, all_read, rewrite))
		return plan;

	/* N': the leaves, and the quals it keeps */
	plan->targetlist = leaves.tlist;
	if (njoinquals > 0)
		((Join *) plan)->joinqual = joinqual;
	plan->qual = qual;
	node.child = plan;
	node.source = plan;
	return (Plan *) make_batch_scan(&node, rewrite);
}

/* ---------------------------------------------------------------------
 * A function in FROM that reads the rows before it
 * ---------------------------------------------------------------------
 */

typedef struct FunctionValue
{
	FunctionScan *scan;
	List	   *nest_params;
	Node	   *value;			/* the function's expression, over the outer side */
	int			column;			/* B's column holding it */
	TupleDesc	fields;			/* a composite value's fields; NULL: a scalar */
	bool		failed;
} FunctionValue;

/* The join's parameter node is, with the outer Var it takes; NULL if none. */
static NestLoopParam *
nest_param(Node *node, FunctionValue *function)
{
	ListCell   *lc;

	if (!IsA(node, Param) || ((Param *) node)->paramkind != PARAM_EXEC)
		return NULL;
	foreach(lc, function->nest_params)
	{
		if (lfirst_node(NestLoopParam, lc)->paramno == ((Param *) node)->paramid)
			return lfirst(lc);
	}
	return NULL;
}

/* node with the join's parameters replaced by the outer columns they take. */
static Node *
outer_values(Node *node, FunctionValue *function)
{
	NestLoopParam *param;

	if (node == NULL)
		return NULL;
	if ((param = nest_param(node, function)) != NULL)
		return (Node *) copyObject(param->paramval);
	return expression_tree_mutator(node, outer_values, function);
}

static bool
reads_nest_param(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return false;
	if (nest_param(node, function) != NULL)
		return true;
	return expression_tree_walker(node, reads_nest_param, function);
}

/* The function's column attno, read from B's column holding its value. */
static Node *
function_column(FunctionValue *function, AttrNumber attno, Node *var)
{
	Var		   *value = makeVar(INDEX_VAR, function->column, exprType(function->value),
								exprTypmod(function->value), exprCollation(function->value), 0);
	FieldSelect *field;

	if (function->fields == NULL)
		return (Node *) value;
	field = makeNode(FieldSelect);
	field->arg = (Expr *) value;
	field->fieldnum = attno;
	field->resulttype = exprType(var);
	field->resulttypmod = exprTypmod(var);
	field->resultcollid = exprCollation(var);
	return (Node *) field;
}

/* The function scan's expressions (over its scan tuple), over B's scan tuple. */
static Node *
scan_columns(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == function->scan->scan.scanrelid)
	{
		if (((Var *) node)->varattno <= 0)
		{
			function->failed = true;	/* the whole row */
			return node;
		}
		return function_column(function, ((Var *) node)->varattno, node);
	}
	return expression_tree_mutator(node, scan_columns, function);
}

/* The join's expressions over B's scan tuple: its outer Vars the child's columns, its inner Vars the function's. */
static Node *
join_columns(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == OUTER_VAR)
	{
		Var		   *var = copyObject((Var *) node);

		var->varno = INDEX_VAR;
		return (Node *) var;
	}
	if (IsA(node, Var) && ((Var *) node)->varno == INNER_VAR)
	{
		TargetEntry *entry = get_tle_by_resno(function->scan->scan.plan.targetlist, ((Var *) node)->varattno);

		return scan_columns((Node *) entry->expr, function);
	}
	return expression_tree_mutator(node, join_columns, function);
}

/*
 * Nested Loop over a Function Scan whose function reads the outer side's
 * row (nestParams): B over the outer side, computing the function's value
 * once a row. NULL when the join is not of that shape or nothing is
 * batched.
 */
static Plan *
batch_lateral_function(NestLoop *join, bool all_read, Rewrite *rewrite,
					   Plan *(*rewrite_child) (Plan *, bool, Rewrite *))
{
	FunctionValue function = {0};
	NewNode		node = {BATCH_SERVES_OWN};
	RangeTblFunction *rtfunction;
	TupleDesc	tupdesc;
	TypeFuncClass class;
	Plan	   *outer = outerPlan(join);

	if (!IsA(innerPlan(join), FunctionScan) || join->nestParams == NIL)
		return NULL;
	function.scan = (FunctionScan *) innerPlan(join);
	if (list_length(function.scan->functions) != 1 || function.scan->funcordinality ||
		function.scan->scan.plan.initPlan != NIL)
		return NULL;
	/* a LEFT join emits its row anyway: the function always returns one */
	if (join->join.jointype != JOIN_INNER &&
		!(join->join.jointype == JOIN_LEFT && join->join.joinqual == NIL && function.scan->scan.plan.qual == NIL))
		return NULL;
	rtfunction = linitial_node(RangeTblFunction, function.scan->functions);
	if (expression_returns_set(rtfunction->funcexpr) || !batch_calls_in(rtfunction->funcexpr))
		return NULL;
	class = get_expr_result_type(rtfunction->funcexpr, NULL, &tupdesc);
	if (class != TYPEFUNC_COMPOSITE && class != TYPEFUNC_SCALAR)
		return NULL;
	function.fields = class == TYPEFUNC_COMPOSITE ? tupdesc : NULL;
	function.nest_params = join->nestParams;
	function.value = outer_values(rtfunction->funcexpr, &function);
	function.column = list_length(outer->targetlist) + 1;
	if (reads_nest_param(function.value, &function))
		return NULL;

	node.computed = list_make1(function.value);
	node.targetlist = (List *) join_columns((Node *) join->join.plan.targetlist, &function);
	node.quals = list_concat((List *) scan_columns((Node *) outer_values((Node *) function.scan->scan.plan.qual,
																		 &function), &function),
							 (List *) join_columns((Node *) list_concat_copy(join->join.joinqual,
																			 join->join.plan.qual), &function));
	if (function.failed || reads_nest_param((Node *) node.targetlist, &function) ||
		reads_nest_param((Node *) node.quals, &function))
		return NULL;
	node.sites = batch_sites_of_own(node.computed, node.quals, node.targetlist);
	if (!any_speculable(node.sites) || !(all_read || reads_ahead_unobservably(outer, rewrite)))
		return NULL;
	node.child = rewrite_child(outer, all_read, rewrite);
	node.source = &join->join.plan;
	return (Plan *) make_batch_scan(&node, rewrite);
}

/* ---------------------------------------------------------------------
 * Calls in the arguments of aggregates: B between the Agg and its child
 * ---------------------------------------------------------------------
 */

static void
batch_aggregates(Agg *agg, Rewrite *rewrite)
{
	NewNode		node = {BATCH_SERVES_PARENT};
	Plan	   *child = outerPlan(agg);
	bool		child_all_read = agg->aggstrategy == AGG_PLAIN || agg->aggstrategy == AGG_HASHED;
	ListCell   *lc;

	if (child == NULL || (!batch_calls_in((Node *) agg->plan.targetlist) && !batch_calls_in((Node *) agg->plan.qual)))
		return;
	node.sites = batch_sites_of_aggregates(agg->plan.targetlist, agg->plan.qual);
	if (!any_speculable(node.sites) || !(child_all_read || reads_ahead_unobservably(child, rewrite)))
		return;
	/* B returns the child's rows as they are: the Agg's Vars still point at the same columns */
	foreach(lc, child->targetlist)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, lc);

		node.targetlist = lappend(node.targetlist,
								  makeTargetEntry((Expr *) column_var(INDEX_VAR, entry->resno, (Node *) entry->expr),
												  entry->resno, NULL, entry->resjunk));
	}
	node.child = child;
	node.source = child;
	outerPlan(agg) = (Plan *) make_batch_scan(&node, rewrite);
}

/* ---------------------------------------------------------------------
 * The walk
 * ---------------------------------------------------------------------
 */

/* Calls walker(&child) for each child plan of plan. */
static void
for_each_child(Plan *plan, void (*walker) (Plan **, void *), void *context)
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
	for_each_child(*plan, highest_plan_node_id, context);
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

	for_each_child(plan, mark_batch_scan, &found);
	return found;
}

/* The rows a Limit node will take, 0 when not known at plan time. */
static int
limit_bound(Limit *limit)
{
	int64		bound = 0;

	if (limit->limitOption != LIMIT_OPTION_COUNT || limit->limitCount == NULL ||
		!IsA(limit->limitCount, Const) || ((Const *) limit->limitCount)->constisnull)
		return 0;
	bound = DatumGetInt64(((Const *) limit->limitCount)->constvalue);
	if (limit->limitOffset != NULL)
	{
		if (!IsA(limit->limitOffset, Const))
			return 0;
		if (!((Const *) limit->limitOffset)->constisnull)
			bound += DatumGetInt64(((Const *) limit->limitOffset)->constvalue);
	}
	return (int) Min(Max(bound, 0), PG_INT32_MAX);
}

typedef struct ChildWalk
{
	Plan	   *parent;
	bool		all_read;
	Rewrite    *rewrite;
} ChildWalk;

static Plan *rewrite_plan(Plan *plan, bool all_read, Rewrite *rewrite);

static void
rewrite_child(Plan **child, void *context)
{
	ChildWalk  *walk = context;

	*child = rewrite_plan(*child, reads_all_of_child(walk->parent, *child, walk->all_read), walk->rewrite);
}

/* all_read: plan's rows are all read whenever any is (its parent reads them all). */
static Plan *
rewrite_plan(Plan *plan, bool all_read, Rewrite *rewrite)
{
	ChildWalk	walk = {plan, all_read, rewrite};
	Plan	   *lateral;

	if (plan == NULL)
		return NULL;
	check_stack_depth();
	if (IsA(plan, NestLoop) &&
		(lateral = batch_lateral_function((NestLoop *) plan, all_read, rewrite, rewrite_plan)) != NULL)
		return lateral;
	rewrite->under_gather += IsA(plan, Gather) || IsA(plan, GatherMerge);
	for_each_child(plan, rewrite_child, &walk);
	if (IsA(plan, Agg))
		batch_aggregates((Agg *) plan, rewrite);
	rewrite->under_gather -= IsA(plan, Gather) || IsA(plan, GatherMerge);

	/* a merge join marks and restores its inner side; B cannot */
	if (IsA(plan, MergeJoin) && !((MergeJoin *) plan)->skip_mark_restore && is_batch_scan(innerPlan(plan)))
		innerPlan(plan) = material_over(innerPlan(plan), rewrite);
	if (IsA(plan, Limit) && is_batch_scan(outerPlan(plan)))
	{
		CustomScan *scan = (CustomScan *) outerPlan(plan);

		intVal(list_nth(scan->custom_private, BATCH_PRIVATE_BOUND)) = limit_bound((Limit *) plan);
	}
	return batch_own(plan, all_read, rewrite);
}

/*
 * Rewrites stmt in place; whether it changed it. A cursor that may fetch
 * backward (SCROLL) is left as it is: a batching node cannot go back, and
 * a Material node above it would hide the table's scan from WHERE
 * CURRENT OF.
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

	stmt->planTree = rewrite_plan(stmt->planTree, stmt->commandType != CMD_SELECT, &rewrite);
	foreach(lc, stmt->subplans)
		lfirst(lc) = rewrite_plan(lfirst(lc), false, &rewrite);
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
		rewrite_statement(stmt, (cursor_options & CURSOR_OPT_SCROLL) != 0);
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
