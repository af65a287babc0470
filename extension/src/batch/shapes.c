/*
 * shapes.c: the three places a batching node B goes in a finished plan.
 *
 * - A plan node N's own quals and targetlist call a batched function: N
 *   becomes B over N', where N' computes what N's expressions read (Vars,
 *   aggregates, window functions) and keeps the leading quals that hold no
 *   call and can neither fail nor have an effect; B evaluates the rest of
 *   N's quals and its targetlist, unchanged, over N''s rows. An inner
 *   join's join quals move with its filter, unless the join is
 *   inner-unique (it stops at the first match of all its join quals).
 * - A function in FROM reads the rows before it (LATERAL, as in the
 *   reference's "FROM support, aws_comprehend.detect_sentiment(feedback,
 *   'en') s"): the Nested Loop over its Function Scan becomes B over the
 *   outer side, B computing the function's value once a row as a column.
 * - An Agg's aggregates' arguments call one: B goes between the Agg and
 *   its child, returning the child's rows as they are.
 *
 * Each is made only where at least one call can be asked ahead (sites.c)
 * and reading ahead is unobservable (read_ahead.c).
 */
#include "postgres.h"

#include "compat.h"

#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"

#include "batch/plan.h"
#include "batch/sites.h"

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
		return (Node *) batch_column_var(INDEX_VAR, leaf_column(leaves, node), node);
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

/* N becomes B over N' (N changed in place), or stays as it is. */
Plan *
batch_own(Plan *plan, Rewrite *rewrite)
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
	if (!batch_any_speculable(node.sites) || !batch_reads_ahead_below(plan, leaves.tlist, joinqual, qual, rewrite))
		return plan;

	/* N': the leaves, and the quals it keeps */
	plan->targetlist = leaves.tlist;
	if (njoinquals > 0)
		((Join *) plan)->joinqual = joinqual;
	plan->qual = qual;
	node.child = plan;
	node.source = plan;
	return (Plan *) batch_make_scan(&node, rewrite);
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
Plan *
batch_lateral_function(NestLoop *join, Rewrite *rewrite, Plan *(*rewrite_child) (Plan *, Rewrite *))
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
	if (!batch_any_speculable(node.sites) || !batch_reads_ahead_unobservably(outer, rewrite))
		return NULL;
	node.child = rewrite_child(outer, rewrite);
	node.source = &join->join.plan;
	return (Plan *) batch_make_scan(&node, rewrite);
}

/* ---------------------------------------------------------------------
 * Calls in the arguments of aggregates: B between the Agg and its child
 * ---------------------------------------------------------------------
 */

void
batch_aggregates(Agg *agg, Rewrite *rewrite)
{
	NewNode		node = {BATCH_SERVES_PARENT};
	Plan	   *child = outerPlan(agg);
	ListCell   *lc;

	if (child == NULL || (!batch_calls_in((Node *) agg->plan.targetlist) && !batch_calls_in((Node *) agg->plan.qual)))
		return;
	node.sites = batch_sites_of_aggregates(agg->plan.targetlist, agg->plan.qual);
	if (!batch_any_speculable(node.sites) || !batch_reads_ahead_unobservably(child, rewrite))
		return;
	/* B returns the child's rows as they are: the Agg's Vars still point at the same columns */
	foreach(lc, child->targetlist)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, lc);

		node.targetlist = lappend(node.targetlist,
								  makeTargetEntry((Expr *) batch_column_var(INDEX_VAR, entry->resno, (Node *) entry->expr),
												  entry->resno, NULL, entry->resjunk));
	}
	node.child = child;
	node.source = child;
	outerPlan(agg) = (Plan *) batch_make_scan(&node, rewrite);
}
