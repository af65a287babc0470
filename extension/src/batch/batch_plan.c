/*
 * batch_plan.c: finds the calls of batched functions in finished plans and
 * puts the batching Custom Scan (batch_scan.c) where they are evaluated.
 *
 * A plan node N that evaluates calls in its targetlist or quals becomes
 * B over N': N' is N computing only what the calls and the rest of N's
 * expressions read (its Vars, Aggrefs, window functions: the "leaves"),
 * with the quals before the first one that calls a batched function; B
 * evaluates the rest of N's expressions over N' with each batched call
 * replaced by a column holding its result for the row. A call is batched
 * when PostgreSQL would evaluate it for every row reaching it (Aurora's
 * rule: the top of a select-list expression, a simple CASE's test, a
 * searched CASE's first WHEN, the first quals that call one) and its
 * arguments hold nothing volatile; the calls of the first such qual are
 * made for the whole batch before B filters, those of the targetlist for
 * the rows that pass. Any other call is made row by row, in its place.
 * Equal calls of one row are made once, but for text generation
 * (invoke_model), whose answers may differ.
 *
 * A function in FROM that reads the rows before it (LATERAL, as in the
 * reference's "FROM support, aws_comprehend.detect_sentiment(feedback, 'en')
 * s") is a Nested Loop over a Function Scan: B replaces both, over the
 * outer side, with the function's value as a column.
 *
 * This runs on the finished plan in a planner hook; a plan made before the
 * module was loaded (the statement whose planning loaded it, for one) is
 * rewritten, as a copy, when the executor starts it. Plans without a call
 * of a batched function are never changed.
 */
#include "postgres.h"

#include "compat.h"

#include "access/parallel.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "batch/batch.h"

bool		batch_mode = true;

static planner_hook_type previous_planner = NULL;
static ExecutorStart_hook_type previous_executor_start = NULL;

extern const CustomScanMethods batch_scan_methods;

/* The rewriting of one statement. */
typedef struct Rewrite
{
	int			next_plan_node_id;
	int			under_gather;	/* below a Gather: each worker runs its own copy */
	bool		changed;
} Rewrite;

/* The expressions of a node being batched, and what B is built of. */
typedef struct Batching
{
	List	   *targetlist;		/* the node's, in its own terms */
	List	   *quals;			/* those B evaluates, in order */
	List	   *first_calls;	/* calls made for every row, before the quals */
	List	   *later_calls;	/* calls made for the rows that pass */
	bool		lift;			/* leaves become columns of child_tlist; else
								 * they are Vars of the child's output */
	Plan	   *child;			/* without lift: B's child */
	/* built: */
	List	   *child_tlist;	/* with lift: N''s targetlist */
	int			nchild;
	List	   *calls;			/* batched calls, over B's child columns */
	List	   *call_in_qual;	/* int: the qual needs it (first_calls) */
	List	   *occurrences;	/* the eligible calls, as in the node's expressions */
	List	   *occurrence_call;	/* int: each one's index in calls */
	bool		failed;
} Batching;

/* ---------------------------------------------------------------------
 * Which calls are batched
 * ---------------------------------------------------------------------
 */

static bool
is_batched_call(Node *node)
{
	return IsA(node, FuncExpr) && batch_function_kind(((FuncExpr *) node)->funcid) >= 0;
}

/* A call whose answer may differ each time (text generation): never merged with an equal one. */
static bool
varies(Node *call)
{
	return batch_function_kind(((FuncExpr *) call)->funcid) == BATCH_INVOKE_MODEL;
}

static bool collect_calls(Node *node, bool unconditional, List **eligible);

typedef struct ConditionalWalk
{
	List	  **eligible;
	bool		found;
} ConditionalWalk;

static bool
collect_conditional(Node *node, ConditionalWalk *walk)
{
	if (node == NULL)
		return false;
	walk->found |= collect_calls(node, false, walk->eligible);
	return false;
}

static bool
collect_list(List *nodes, bool unconditional_first, bool unconditional_rest, List **eligible)
{
	ListCell   *lc;
	bool		found = false;

	foreach(lc, nodes)
		found |= collect_calls(lfirst(lc), foreach_current_index(lc) == 0 ? unconditional_first
							   : unconditional_rest, eligible);
	return found;
}

/*
 * Whether node calls a batched function anywhere; appends to *eligible the
 * calls PostgreSQL evaluates whenever it evaluates node (when unconditional)
 * and that take no batched call as argument.
 */
static bool
collect_calls(Node *node, bool unconditional, List **eligible)
{
	if (node == NULL)
		return false;
	check_stack_depth();
	switch (nodeTag(node))
	{
		case T_List:
			return collect_list((List *) node, unconditional, unconditional, eligible);
		case T_TargetEntry:
			return collect_calls((Node *) ((TargetEntry *) node)->expr, unconditional, eligible);
		case T_FuncExpr:
			{
				List	   *args = ((FuncExpr *) node)->args;
				bool		nested = collect_calls((Node *) args, unconditional, eligible);

				if (!is_batched_call(node))
					return nested;
				/* volatile arguments: evaluated once a call, in the row's order */
				if (unconditional && !nested && !contain_volatile_functions((Node *) args))
					*eligible = lappend(*eligible, node);
				return true;
			}
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			return collect_calls((Node *) ((OpExpr *) node)->args, unconditional, eligible);
		case T_ScalarArrayOpExpr:
			return collect_calls((Node *) ((ScalarArrayOpExpr *) node)->args, unconditional, eligible);
		case T_MinMaxExpr:
			return collect_calls((Node *) ((MinMaxExpr *) node)->args, unconditional, eligible);
		case T_RowExpr:
			return collect_calls((Node *) ((RowExpr *) node)->args, unconditional, eligible);
		case T_ArrayExpr:
			return collect_calls((Node *) ((ArrayExpr *) node)->elements, unconditional, eligible);
		case T_RelabelType:
			return collect_calls((Node *) ((RelabelType *) node)->arg, unconditional, eligible);
		case T_CoerceViaIO:
			return collect_calls((Node *) ((CoerceViaIO *) node)->arg, unconditional, eligible);
		case T_CoerceToDomain:
			return collect_calls((Node *) ((CoerceToDomain *) node)->arg, unconditional, eligible);
		case T_ConvertRowtypeExpr:
			return collect_calls((Node *) ((ConvertRowtypeExpr *) node)->arg, unconditional, eligible);
		case T_CollateExpr:
			return collect_calls((Node *) ((CollateExpr *) node)->arg, unconditional, eligible);
		case T_FieldSelect:
			return collect_calls((Node *) ((FieldSelect *) node)->arg, unconditional, eligible);
		case T_NullTest:
			return collect_calls((Node *) ((NullTest *) node)->arg, unconditional, eligible);
		case T_BooleanTest:
			return collect_calls((Node *) ((BooleanTest *) node)->arg, unconditional, eligible);
		case T_BoolExpr:
			/* AND and OR stop early: only the first argument always runs */
			return collect_list(((BoolExpr *) node)->args, unconditional, false, eligible);
		case T_CoalesceExpr:
			return collect_list(((CoalesceExpr *) node)->args, unconditional, false, eligible);
		case T_CaseExpr:
			{
				CaseExpr   *caseexpr = (CaseExpr *) node;
				bool		found = collect_calls((Node *) caseexpr->arg, unconditional, eligible);
				ListCell   *lc;

				/* the first WHEN's test always runs; the rest may not */
				foreach(lc, caseexpr->args)
				{
					CaseWhen   *when = lfirst_node(CaseWhen, lc);

					found |= collect_calls((Node *) when->expr, unconditional && foreach_current_index(lc) == 0,
										   eligible);
					found |= collect_calls((Node *) when->result, false, eligible);
				}
				return found | collect_calls((Node *) caseexpr->defresult, false, eligible);
			}
		default:
			{
				ConditionalWalk walk = {eligible, false};

				(void) expression_tree_walker(node, collect_conditional, &walk);
				return walk.found;
			}
	}
}

static bool
count_batched_calls(Node *node, int *count)
{
	if (node == NULL)
		return false;
	if (is_batched_call(node))
		(*count)++;
	return expression_tree_walker(node, count_batched_calls, count);
}

/* ---------------------------------------------------------------------
 * B's expressions
 * ---------------------------------------------------------------------
 */

/* What N computes and B reads: the values of N's own inputs. */
static bool
is_leaf(Node *node)
{
	return IsA(node, Var) || IsA(node, Aggref) || IsA(node, GroupingFunc) || IsA(node, WindowFunc);
}

static Var *
column_var(int varno, int attno, Node *expr)
{
	return makeVar(varno, attno, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
}

/* The child column (1-based) holding leaf; 0 when it cannot be had. */
static int
child_column(Batching *batching, Node *leaf)
{
	ListCell   *lc;

	if (!batching->lift)
	{
		/* The child's output as it is: only its Vars can be read. */
		if (IsA(leaf, Var) && ((Var *) leaf)->varno == OUTER_VAR &&
			((Var *) leaf)->varattno <= list_length(batching->child->targetlist))
			return ((Var *) leaf)->varattno;
		return 0;
	}
	foreach(lc, batching->child_tlist)
	{
		if (equal(lfirst_node(TargetEntry, lc)->expr, leaf))
			return foreach_current_index(lc) + 1;
	}
	batching->child_tlist = lappend(batching->child_tlist,
									makeTargetEntry((Expr *) copyObject(leaf),
													list_length(batching->child_tlist) + 1, NULL, false));
	return list_length(batching->child_tlist);
}

static bool
collect_leaves(Node *node, Batching *batching)
{
	if (node == NULL)
		return false;
	if (is_leaf(node))
	{
		if (child_column(batching, node) == 0)
			batching->failed = true;
		return false;
	}
	return expression_tree_walker(node, collect_leaves, batching);
}

typedef struct Mutation
{
	Batching   *batching;
	bool		qual;			/* only the results of the calls the qual needs */
} Mutation;

/* The index of call in batching->occurrences, or -1. */
static int
occurrence(Batching *batching, Node *call)
{
	ListCell   *lc;

	foreach(lc, batching->occurrences)
	{
		if (lfirst(lc) == call)
			return foreach_current_index(lc);
	}
	return -1;
}

static Node *
to_columns(Node *node, Mutation *mutation)
{
	Batching   *batching = mutation->batching;

	if (node == NULL)
		return NULL;
	if (is_leaf(node))
		return (Node *) column_var(INDEX_VAR, child_column(batching, node), node);
	if (is_batched_call(node))
	{
		int			at = occurrence(batching, node);

		if (at >= 0)
		{
			int			call = list_nth_int(batching->occurrence_call, at);

			if (!mutation->qual || list_nth_int(batching->call_in_qual, call))
				return (Node *) column_var(INDEX_VAR, batching->nchild + call + 1, node);
		}
		/* made row by row, here */
	}
	return expression_tree_mutator(node, to_columns, mutation);
}

/*
 * Adds the eligible calls (in N's terms) to batching->calls. Equal calls are
 * one, but text generation's.
 */
static void
add_calls(Batching *batching, List *eligible, bool in_qual)
{
	Mutation	leaves_only = {batching, false};
	ListCell   *lc;

	foreach(lc, eligible)
	{
		FuncExpr   *call;
		ListCell   *known;
		int			index = -1;

		if (list_member_ptr(batching->occurrences, lfirst(lc)))
			continue;
		call = (FuncExpr *) expression_tree_mutator(lfirst(lc), to_columns, &leaves_only);
		foreach(known, batching->calls)
		{
			if (!varies((Node *) call) && equal(lfirst(known), call))
				index = foreach_current_index(known);
		}
		if (index < 0)
		{
			batching->calls = lappend(batching->calls, call);
			batching->call_in_qual = lappend_int(batching->call_in_qual, in_qual);
			index = list_length(batching->calls) - 1;
		}
		batching->occurrences = lappend(batching->occurrences, lfirst(lc));
		batching->occurrence_call = lappend_int(batching->occurrence_call, index);
	}
}

/*
 * Builds B's targetlist, quals and calls; false when B could not evaluate
 * them (a leaf the child does not have) or there is nothing to batch.
 */
static bool
build_batching(Batching *batching, List **targetlist, List **quals)
{
	Mutation	for_quals = {batching, true};
	Mutation	for_targetlist = {batching, false};

	/* every leaf first: the calls' columns come after the child's */
	collect_leaves((Node *) batching->targetlist, batching);
	collect_leaves((Node *) batching->quals, batching);
	if (batching->failed || (batching->first_calls == NIL && batching->later_calls == NIL))
		return false;
	batching->nchild = list_length(batching->lift ? batching->child_tlist : batching->child->targetlist);
	add_calls(batching, batching->first_calls, true);
	add_calls(batching, batching->later_calls, false);
	*quals = (List *) to_columns((Node *) batching->quals, &for_quals);
	*targetlist = (List *) to_columns((Node *) batching->targetlist, &for_targetlist);
	return true;
}

/* ---------------------------------------------------------------------
 * The nodes
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

static CustomScan *
make_batch_scan(Batching *batching, Plan *child, Plan *source, List *targetlist, List *quals,
				Rewrite *rewrite)
{
	CustomScan *scan = makeNode(CustomScan);
	List	   *private = list_make2(makeInteger(list_length(child->targetlist)), makeInteger(0));
	ListCell   *lc;
	ListCell   *in_qual;

	copy_plan_fields(&scan->scan.plan, source, rewrite);
	/* the query level's InitPlans stay at its top, which B now is */
	scan->scan.plan.initPlan = source->initPlan;
	source->initPlan = NIL;
	/* to collect the workers' Batch Processing counts */
	scan->scan.plan.parallel_aware = rewrite->under_gather > 0;
	scan->scan.plan.targetlist = targetlist;
	scan->scan.plan.qual = quals;
	scan->scan.plan.lefttree = child;
	scan->methods = &batch_scan_methods;
	foreach(lc, child->targetlist)
	{
		TargetEntry *entry = lfirst_node(TargetEntry, lc);

		scan->custom_scan_tlist = lappend(scan->custom_scan_tlist,
										  makeTargetEntry((Expr *) column_var(OUTER_VAR, entry->resno,
																			  (Node *) entry->expr),
														  entry->resno, NULL, false));
	}
	forboth(lc, batching->calls, in_qual, batching->call_in_qual)
	{
		FuncExpr   *call = lfirst(lc);

		scan->custom_scan_tlist = lappend(scan->custom_scan_tlist,
										  makeTargetEntry((Expr *) call,
														  list_length(scan->custom_scan_tlist) + 1, NULL, false));
		private = lappend(private, makeInteger(batch_function_kind(call->funcid)));
		private = lappend(private, makeInteger(lfirst_int(in_qual)));
	}
	scan->custom_private = private;
	rewrite->changed = true;
	return scan;
}

static bool
is_batch_scan(Plan *plan)
{
	return plan != NULL && IsA(plan, CustomScan) && ((CustomScan *) plan)->methods == &batch_scan_methods;
}

/* A Material node over child, for what needs a scan B cannot do (backward, mark/restore). */
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

/* The node's quals in the order PostgreSQL evaluates them, and whether its
 * join quals may be moved above it (an inner join's filter only). */
static List *
node_quals(Plan *plan, int *njoinquals)
{
	*njoinquals = 0;
	if ((IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin)) &&
		((Join *) plan)->jointype == JOIN_INNER)
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
		case T_WindowAgg:
			return true;
		case T_Result:
			/* without a child it makes one row: nothing to batch */
			return plan->lefttree != NULL;
		default:
			return false;
	}
}

/* N becomes B over N' (N changed in place), or stays as it is. */
static Plan *
batch_node(Plan *plan, Rewrite *rewrite)
{
	Batching	batching = {0};
	int			njoinquals;
	List	   *quals = node_quals(plan, &njoinquals);
	int			first_call_qual = list_length(quals);
	int			calls_in_quals = 0;
	List	   *targetlist;
	List	   *batched_quals;
	ListCell   *lc;

	/* a WindowAgg's run condition reads its own output by position */
	if (IsA(plan, WindowAgg) && (plan->qual != NIL || ((WindowAgg *) plan)->runCondition != NIL))
		return plan;
	foreach(lc, quals)
	{
		if (collect_calls(lfirst(lc), true, &batching.first_calls))
		{
			first_call_qual = foreach_current_index(lc);
			break;
		}
	}
	batching.quals = list_copy_tail(quals, first_call_qual);

	/*
	 * The select list's calls are made for the rows that pass the quals, so
	 * the quals run for the whole batch first. A call in them that is made
	 * row by row would then be made for rows a LIMIT never reaches: batch
	 * only the first qual's calls then, and evaluate the quals row by row.
	 */
	(void) count_batched_calls((Node *) batching.quals, &calls_in_quals);
	if (calls_in_quals == list_length(batching.first_calls))
		collect_calls((Node *) plan->targetlist, true, &batching.later_calls);
	batching.targetlist = plan->targetlist;
	batching.lift = true;
	if (!build_batching(&batching, &targetlist, &batched_quals))
		return plan;

	/* N': the leaves, and the quals before the first that calls */
	plan->targetlist = batching.child_tlist;
	if (first_call_qual < njoinquals)
	{
		((Join *) plan)->joinqual = list_truncate(list_copy(((Join *) plan)->joinqual), first_call_qual);
		plan->qual = NIL;
	}
	else
		plan->qual = list_truncate(list_copy(plan->qual), first_call_qual - njoinquals);
	return (Plan *) make_batch_scan(&batching, plan, plan, targetlist, batched_quals, rewrite);
}

/* ---------------------------------------------------------------------
 * A function in FROM that reads the rows before it
 * ---------------------------------------------------------------------
 */

typedef struct FunctionValue
{
	FunctionScan *scan;
	Node	   *value;			/* the function's expression, over the outer side */
	TupleDesc	columns;		/* its columns are the fields of value; NULL: it is the column */
	List	   *nest_params;
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

/* The function's column attno, as an expression over the outer side. */
static Node *
function_column(FunctionValue *function, AttrNumber attno)
{
	FieldSelect *field;

	/* the same value (and calls) each time: read once a row */
	if (function->columns == NULL)
		return function->value;
	field = makeNode(FieldSelect);
	field->arg = (Expr *) function->value;
	field->fieldnum = attno;
	field->resulttype = TupleDescAttr(function->columns, attno - 1)->atttypid;
	field->resulttypmod = TupleDescAttr(function->columns, attno - 1)->atttypmod;
	field->resultcollid = TupleDescAttr(function->columns, attno - 1)->attcollation;
	return (Node *) field;
}

/* The function scan's own expressions (over its scan tuple), over the outer side. */
static Node *
scan_values(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == function->scan->scan.scanrelid)
	{
		if (((Var *) node)->varattno <= 0)
		{
			function->failed = true;	/* the whole row: left as it is */
			return node;
		}
		return function_column(function, ((Var *) node)->varattno);
	}
	return expression_tree_mutator(node, scan_values, function);
}

/* The join's expressions, the inner side's Vars made the function's columns. */
static Node *
inner_values(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == INNER_VAR)
	{
		TargetEntry *entry = get_tle_by_resno(function->scan->scan.plan.targetlist, ((Var *) node)->varattno);

		return scan_values(outer_values((Node *) entry->expr, function), function);
	}
	return expression_tree_mutator(node, inner_values, function);
}

/* Whether node still reads a parameter the join set (which B does not). */
static bool
reads_nest_param(Node *node, FunctionValue *function)
{
	if (node == NULL)
		return false;
	if (nest_param(node, function) != NULL)
		return true;
	return expression_tree_walker(node, reads_nest_param, function);
}

static bool
is_volatile(Oid function, void *context)
{
	return func_volatile(function) == PROVOLATILE_VOLATILE;
}

static bool
volatile_outside_calls(Node *node, void *context)
{
	if (node == NULL || is_batched_call(node))
		return false;
	if (check_functions_in_node(node, is_volatile, context) || IsA(node, NextValueExpr))
		return true;
	return expression_tree_walker(node, volatile_outside_calls, context);
}

/*
 * Nested Loop over a Function Scan whose function reads the outer side's
 * row (nestParams) and calls a batched function: B over the outer side.
 * NULL when the join is not of that shape.
 */
static Plan *
batch_lateral_function(NestLoop *join, Rewrite *rewrite, Plan *(*rewrite_child) (Plan *, Rewrite *))
{
	FunctionValue function = {0};
	Batching	batching = {0};
	RangeTblFunction *rtfunction;
	TupleDesc	tupdesc;
	TypeFuncClass class;
	List	   *targetlist;
	List	   *batched_quals;
	Plan	   *outer;

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
	if (expression_returns_set(rtfunction->funcexpr))
		return NULL;
	class = get_expr_result_type(rtfunction->funcexpr, NULL, &tupdesc);
	if (class != TYPEFUNC_COMPOSITE && class != TYPEFUNC_SCALAR)
		return NULL;
	/* evaluated once a row here, once a reference in B */
	if (volatile_outside_calls(rtfunction->funcexpr, NULL))
		return NULL;
	function.columns = class == TYPEFUNC_COMPOSITE ? tupdesc : NULL;
	function.nest_params = join->nestParams;
	function.value = outer_values(rtfunction->funcexpr, &function);
	if (!collect_calls(function.value, true, &batching.first_calls) || batching.first_calls == NIL)
		return NULL;

	batching.targetlist = (List *) inner_values((Node *) join->join.plan.targetlist, &function);
	batching.quals = list_concat((List *) scan_values((Node *) outer_values((Node *) function.scan->scan.plan.qual,
																		   &function), &function),
								 (List *) inner_values((Node *) list_concat_copy(join->join.joinqual,
																				 join->join.plan.qual), &function));
	collect_calls((Node *) batching.targetlist, true, &batching.later_calls);
	if (function.failed)
		return NULL;
	batching.child = outerPlan(join);
	if (!build_batching(&batching, &targetlist, &batched_quals) ||
		reads_nest_param((Node *) targetlist, &function) || reads_nest_param((Node *) batched_quals, &function))
		return NULL;
	outer = rewrite_child(outerPlan(join), rewrite);
	return (Plan *) make_batch_scan(&batching, outer, &join->join.plan, targetlist, batched_quals, rewrite);
}

/* ---------------------------------------------------------------------
 * Calls in the arguments of aggregates
 * ---------------------------------------------------------------------
 */

static bool
collect_aggregate_calls(Node *node, List **eligible)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		/* with FILTER, the arguments are evaluated for some rows only */
		if (((Aggref *) node)->aggfilter == NULL)
			collect_calls((Node *) ((Aggref *) node)->args, true, eligible);
		return false;
	}
	return expression_tree_walker(node, collect_aggregate_calls, eligible);
}

/* expr, over plan's output, over its input: plan's targetlist in place of its Vars. */
static Node *
below(Node *expr, Plan *plan)
{
	if (expr == NULL)
		return NULL;
	if (IsA(expr, Var) && ((Var *) expr)->varno == OUTER_VAR)
		return copyObject((Node *) get_tle_by_resno(plan->targetlist, ((Var *) expr)->varattno)->expr);
	return expression_tree_mutator(expr, below, plan);
}

static bool
collect_exec_params(Node *node, Bitmapset **params)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		*params = bms_add_member(*params, ((Param *) node)->paramid);
	return expression_tree_walker(node, collect_exec_params, params);
}

/* plan now also reads params: a change of one makes it rescan (a Sort not replay its rows). */
static void
add_params(Plan *plan, Bitmapset *params)
{
	plan->extParam = bms_add_members(plan->extParam, params);
	plan->allParam = bms_add_members(plan->allParam, params);
}

typedef struct PushedCalls
{
	List	   *calls;			/* as in the aggregates' arguments */
	List	   *columns;		/* the Vars that replace them */
} PushedCalls;

static Node *
use_pushed_calls(Node *node, PushedCalls *pushed)
{
	ListCell   *call;
	ListCell   *column;

	if (node == NULL)
		return NULL;
	forboth(call, pushed->calls, column, pushed->columns)
	{
		if (varies(lfirst(call)) ? node == lfirst(call) : equal(node, lfirst(call)))
			return copyObject(lfirst(column));
	}
	return expression_tree_mutator(node, use_pushed_calls, pushed);
}

static Node *
in_aggregates(Node *node, PushedCalls *pushed)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref) && ((Aggref *) node)->aggfilter == NULL)
	{
		Aggref	   *aggref = makeNode(Aggref);

		/* the arguments' own nodes: a text generation call is matched by identity */
		*aggref = *(Aggref *) node;
		aggref->args = (List *) use_pushed_calls((Node *) aggref->args, pushed);
		return (Node *) aggref;
	}
	return expression_tree_mutator(node, in_aggregates, pushed);
}

static bool evaluates_expressions(Plan *plan);

/*
 * An aggregate's arguments are evaluated by the Agg node itself, row by row:
 * the calls in them move into the targetlist of the node below (through
 * Sorts), where batching finds them, and the arguments read their columns.
 */
static void
push_aggregate_calls(Agg *agg)
{
	List	   *eligible = NIL;
	List	   *passing = NIL;
	Plan	   *target = outerPlan(agg);
	PushedCalls pushed = {NIL, NIL};
	ListCell   *lc;

	if (agg->chain != NIL)
		return;
	collect_aggregate_calls((Node *) agg->plan.targetlist, &eligible);
	collect_aggregate_calls((Node *) agg->plan.qual, &eligible);
	while (target != NULL && (IsA(target, Sort) || IsA(target, IncrementalSort) || IsA(target, Material)))
	{
		passing = lcons(target, passing);
		target = outerPlan(target);
	}
	if (eligible == NIL || target == NULL || !evaluates_expressions(target))
		return;
	foreach(lc, eligible)
	{
		Node	   *call = lfirst(lc);
		Node	   *expr = call;
		ListCell   *node;
		int			resno;
		Bitmapset  *params = NULL;

		if (!varies(call) && list_member(pushed.calls, call))
			continue;

		foreach(node, passing)
			expr = below(expr, lfirst(node));
		expr = below(expr, target);
		collect_exec_params(expr, &params);
		resno = list_length(target->targetlist) + 1;
		target->targetlist = lappend(target->targetlist, makeTargetEntry((Expr *) expr, resno, NULL, true));
		add_params(target, params);
		foreach(node, passing)
		{
			Plan	   *sort = lfirst(node);
			Var		   *column = column_var(OUTER_VAR, resno, call);

			resno = list_length(sort->targetlist) + 1;
			sort->targetlist = lappend(sort->targetlist, makeTargetEntry((Expr *) column, resno, NULL, true));
			add_params(sort, params);
		}
		pushed.calls = lappend(pushed.calls, call);
		pushed.columns = lappend(pushed.columns, column_var(OUTER_VAR, resno, call));
	}
	agg->plan.targetlist = (List *) in_aggregates((Node *) agg->plan.targetlist, &pushed);
	agg->plan.qual = (List *) in_aggregates((Node *) agg->plan.qual, &pushed);
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

static Plan *rewrite_plan(Plan *plan, Rewrite *rewrite);
static bool has_batch_scan(Plan *plan);

static void
mark_batch_scan(Plan **plan, void *context)
{
	*(bool *) context |= has_batch_scan(*plan);
}

static void
rewrite_child(Plan **plan, void *context)
{
	*plan = rewrite_plan(*plan, context);
}

/* The rows a Limit node over plan will take, 0 when not known at plan time. */
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
	if (IsA(plan, Agg))
		push_aggregate_calls((Agg *) plan);
	rewrite->under_gather += IsA(plan, Gather) || IsA(plan, GatherMerge);
	for_each_child(plan, rewrite_child, rewrite);
	rewrite->under_gather -= IsA(plan, Gather) || IsA(plan, GatherMerge);

	/* a merge join marks and restores its inner side; B cannot */
	if (IsA(plan, MergeJoin) && !((MergeJoin *) plan)->skip_mark_restore && is_batch_scan(innerPlan(plan)))
		innerPlan(plan) = material_over(innerPlan(plan), rewrite);
	if (IsA(plan, Limit) && is_batch_scan(outerPlan(plan)))
	{
		CustomScan *scan = (CustomScan *) outerPlan(plan);

		intVal(list_nth(scan->custom_private, BATCH_PRIVATE_BOUND)) = limit_bound((Limit *) plan);
	}
	if (evaluates_expressions(plan))
		return batch_node(plan, rewrite);
	return plan;
}

static bool
has_batch_scan(Plan *plan)
{
	bool		found = is_batch_scan(plan);

	for_each_child(plan, mark_batch_scan, &found);
	return found;
}

/*
 * Rewrites stmt in place; backward: a cursor that may fetch backward.
 * Whether it changed it.
 */
static bool
rewrite_statement(PlannedStmt *stmt, bool backward)
{
	Rewrite		rewrite = {0};
	ListCell   *lc;
	int			highest = 0;

	if (stmt->commandType == CMD_UTILITY || !batch_functions_in(stmt->invalItems))
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
	if (rewrite.changed && backward && !ExecSupportsBackwardScan(stmt->planTree))
		stmt->planTree = material_over(stmt->planTree, &rewrite);
	return rewrite.changed;
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
 * other executions.
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
}

void
batch_plan_init(void)
{
	previous_planner = planner_hook;
	planner_hook = batch_planner;
	previous_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = batch_executor_start;
}
