/*
 * sites.c: the calls a batching node serves, and when a row makes them.
 *
 * A walk over the expressions whose calls a node serves finds each call of
 * a batched function ("site") in the order PostgreSQL evaluates them, with
 * its condition: the expression that is true exactly when evaluating the
 * row reaches the call. ExecQual stops at the first qual that is not true,
 * AND at a false argument, OR at a true one, CASE at the first true WHEN,
 * COALESCE at the first value that is not NULL; every other node the walk
 * enters evaluates all its arguments once. A call under any other node (a
 * SubPlan, a RowCompareExpr, an ArrayCoerceExpr's element expression, ...)
 * is not a site: it is made row by row, in its place.
 *
 * A site is asked ahead (speculable) when its condition and its arguments
 * hold nothing volatile and no call but other sites' (whose answers are
 * then asked first: a later stage). It can be asked ahead without a
 * subtransaction (in parallel mode, which allows none) when nothing in
 * them can fail: only leakproof functions.
 *
 * Execution walks the same expressions with the same walk to find the
 * calls, so that site n is the same call at both ends.
 */
#include "postgres.h"

#include "compat.h"

#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"

#include "batch/batch.h"
#include "batch/sites.h"

typedef struct SiteWalk
{
	bool		analyze;		/* also build the conditions */
	List	   *sites;			/* PlannedSite (analyze) or FuncExpr */
} SiteWalk;

/* A condition planning cannot write: the sites under it are made row by row. */
static Const unknown_condition = {{T_Const}};

static Expr *
boolean_test(Node *arg, BoolTestType type)
{
	BooleanTest *test = makeNode(BooleanTest);

	test->arg = (Expr *) arg;
	test->booltesttype = type;
	test->location = -1;
	return (Expr *) test;
}

static Expr *
is_null(Node *arg)
{
	NullTest   *test = makeNode(NullTest);

	test->arg = (Expr *) arg;
	test->nulltesttype = IS_NULL;
	test->argisrow = false;		/* COALESCE tests the value, not its fields */
	test->location = -1;
	return (Expr *) test;
}

typedef struct CaseValue
{
	Node	   *value;
	bool		failed;
} CaseValue;

/* A simple CASE's WHEN test with the CASE's value in place of the CaseTestExpr. */
static Node *
with_case_value(Node *node, CaseValue *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, CaseTestExpr))
		return copyObject(context->value);
	/* nodes with CaseTestExprs of their own */
	if (IsA(node, CaseExpr) || IsA(node, ArrayCoerceExpr) || IsA(node, FieldStore) ||
		IsA(node, SubscriptingRef) || IsA(node, CoerceToDomain))
		context->failed = true;
	return expression_tree_mutator(node, with_case_value, context);
}

static void walk(Node *node, List *condition, SiteWalk *context);

static void
add_site(FuncExpr *call, List *condition, SiteWalk *context)
{
	PlannedSite *site;

	if (!context->analyze)
	{
		context->sites = lappend(context->sites, call);
		return;
	}
	site = palloc0(sizeof(PlannedSite));
	site->call = call;
	site->kind = batch_function_kind(call->funcid);
	site->same_as = -1;
	if (list_member_ptr(condition, &unknown_condition))
		site->stage = -1;		/* not speculable, whatever else */
	else if (condition != NIL)
		site->condition = make_ands_explicit(condition);
	context->sites = lappend(context->sites, site);
}

/* Walks args, argument k under condition and the conditions made of the arguments before it. */
static void
walk_short_circuit(List *args, List *condition, Expr *(*passed) (Node *), SiteWalk *context)
{
	List	   *before = list_copy(condition);
	ListCell   *lc;

	foreach(lc, args)
	{
		walk(lfirst(lc), before, context);
		if (context->analyze)
			before = lappend(before, passed(lfirst(lc)));
	}
}

static Expr *
not_false(Node *arg)
{
	return boolean_test(arg, IS_NOT_FALSE);
}

static Expr *
not_true(Node *arg)
{
	return boolean_test(arg, IS_NOT_TRUE);
}

static void
walk_case(CaseExpr *caseexpr, List *condition, SiteWalk *context)
{
	List	   *before = list_copy(condition);
	ListCell   *lc;

	walk((Node *) caseexpr->arg, condition, context);
	foreach(lc, caseexpr->args)
	{
		CaseWhen   *when = lfirst_node(CaseWhen, lc);
		Node	   *test = (Node *) when->expr;

		walk(test, before, context);
		if (context->analyze && caseexpr->arg != NULL)
		{
			CaseValue	value = {(Node *) caseexpr->arg, false};

			test = with_case_value(test, &value);
			if (value.failed)
				test = (Node *) &unknown_condition;
		}
		if (test == (Node *) &unknown_condition)
		{
			walk((Node *) when->result, lappend(list_copy(before), test), context);
			before = lappend(before, test);
			continue;
		}
		walk((Node *) when->result,
			 context->analyze ? lappend(list_copy(before), boolean_test(test, IS_TRUE)) : NIL, context);
		if (context->analyze)
			before = lappend(before, not_true(test));
	}
	walk((Node *) caseexpr->defresult, before, context);
}

/*
 * Finds the sites in node, which a row evaluates when condition (a list
 * of conjuncts, NIL: always) holds.
 */
static void
walk(Node *node, List *condition, SiteWalk *context)
{
	ListCell   *lc;

	if (node == NULL)
		return;
	check_stack_depth();
	switch (nodeTag(node))
	{
		case T_List:
			foreach(lc, (List *) node)
				walk(lfirst(lc), condition, context);
			return;
		case T_TargetEntry:
			walk((Node *) ((TargetEntry *) node)->expr, condition, context);
			return;
		case T_FuncExpr:
			if (((FuncExpr *) node)->funcretset)
				return;
			if (batch_is_call(node))
				add_site((FuncExpr *) node, condition, context);
			walk((Node *) ((FuncExpr *) node)->args, condition, context);
			return;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			if (((OpExpr *) node)->opretset)
				return;
			walk((Node *) ((OpExpr *) node)->args, condition, context);
			return;
		case T_ScalarArrayOpExpr:
			walk((Node *) ((ScalarArrayOpExpr *) node)->args, condition, context);
			return;
		case T_RelabelType:
			walk((Node *) ((RelabelType *) node)->arg, condition, context);
			return;
		case T_CoerceViaIO:
			walk((Node *) ((CoerceViaIO *) node)->arg, condition, context);
			return;
		case T_ConvertRowtypeExpr:
			walk((Node *) ((ConvertRowtypeExpr *) node)->arg, condition, context);
			return;
		case T_CollateExpr:
			walk((Node *) ((CollateExpr *) node)->arg, condition, context);
			return;
		case T_FieldSelect:
			walk((Node *) ((FieldSelect *) node)->arg, condition, context);
			return;
		case T_NullTest:
			walk((Node *) ((NullTest *) node)->arg, condition, context);
			return;
		case T_BooleanTest:
			walk((Node *) ((BooleanTest *) node)->arg, condition, context);
			return;
		case T_CoerceToDomain:
			walk((Node *) ((CoerceToDomain *) node)->arg, condition, context);
			return;
		case T_RowExpr:
			walk((Node *) ((RowExpr *) node)->args, condition, context);
			return;
		case T_ArrayExpr:
			walk((Node *) ((ArrayExpr *) node)->elements, condition, context);
			return;
		case T_MinMaxExpr:
			walk((Node *) ((MinMaxExpr *) node)->args, condition, context);
			return;
		case T_BoolExpr:
			switch (((BoolExpr *) node)->boolop)
			{
				case AND_EXPR:
					walk_short_circuit(((BoolExpr *) node)->args, condition, not_false, context);
					return;
				case OR_EXPR:
					walk_short_circuit(((BoolExpr *) node)->args, condition, not_true, context);
					return;
				case NOT_EXPR:
					walk((Node *) ((BoolExpr *) node)->args, condition, context);
					return;
			}
			return;
		case T_CoalesceExpr:
			walk_short_circuit(((CoalesceExpr *) node)->args, condition, is_null, context);
			return;
		case T_CaseExpr:
			walk_case((CaseExpr *) node, condition, context);
			return;
		default:
			/* evaluated conditionally, per element, or elsewhere: not a site */
			return;
	}
}

/* Each Aggref's FILTER, always evaluated, then its arguments, when the FILTER passes. */
static bool
walk_aggregates(Node *node, SiteWalk *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		Aggref	   *aggref = (Aggref *) node;

		walk((Node *) aggref->aggfilter, NIL, context);
		walk((Node *) aggref->args,
			 aggref->aggfilter && context->analyze ? list_make1(boolean_test((Node *) aggref->aggfilter, IS_TRUE))
			 : NIL, context);
		return false;
	}
	if (IsA(node, SubPlan) || IsA(node, AlternativeSubPlan))
		return false;
	return expression_tree_walker(node, walk_aggregates, context);
}

static List *
walk_own(List *computed, List *quals, List *targetlist, bool analyze)
{
	SiteWalk	context = {analyze, NIL};
	List	   *before = NIL;
	ListCell   *lc;

	walk((Node *) computed, NIL, &context);
	foreach(lc, quals)
	{
		walk(lfirst(lc), before, &context);
		if (analyze)
			before = lappend(before, boolean_test(lfirst(lc), IS_TRUE));
	}
	walk((Node *) targetlist, before, &context);
	return context.sites;
}

List *
batch_calls_of_own(List *computed, List *quals, List *targetlist)
{
	return walk_own(computed, quals, targetlist, false);
}

List *
batch_calls_of_aggregates(List *targetlist, List *quals)
{
	SiteWalk	context = {false, NIL};

	walk_aggregates((Node *) targetlist, &context);
	walk_aggregates((Node *) quals, &context);
	return context.sites;
}

/* ---------------------------------------------------------------------
 * Which sites can be asked ahead
 * ---------------------------------------------------------------------
 */

typedef struct Purity
{
	List	   *sites;
	bool		pure;			/* nothing volatile, no call but sites' */
	bool		cannot_fail;	/* only leakproof functions */
	Bitmapset  *depends;		/* the sites it needs */
} Purity;

static bool
is_volatile_or_set(Oid function, void *context)
{
	return func_volatile(function) == PROVOLATILE_VOLATILE || get_func_retset(function);
}

static bool
is_leaky(Oid function, void *context)
{
	return !get_func_leakproof(function);
}

/* The first site whose call is equal to call, or -1. */
static int
site_of(List *sites, Node *call)
{
	ListCell   *lc;

	foreach(lc, sites)
	{
		if (equal(((PlannedSite *) lfirst(lc))->call, call))
			return foreach_current_index(lc);
	}
	return -1;
}

static bool
check_purity(Node *node, Purity *purity)
{
	if (node == NULL)
		return false;
	if (batch_is_call(node))
	{
		int			site = site_of(purity->sites, node);

		if (site < 0)
		{
			purity->pure = false;
			return true;
		}
		purity->depends = bms_add_member(purity->depends, site);
		return expression_tree_walker(node, check_purity, purity);
	}
	if (IsA(node, SubPlan) || IsA(node, AlternativeSubPlan) || IsA(node, Aggref) || IsA(node, WindowFunc) ||
		IsA(node, GroupingFunc) || IsA(node, NextValueExpr) || IsA(node, CaseTestExpr) ||
		IsA(node, CoerceToDomainValue) || check_functions_in_node(node, is_volatile_or_set, NULL))
	{
		purity->pure = false;
		return true;
	}
	if (check_functions_in_node(node, is_leaky, NULL))
		purity->cannot_fail = false;
	return expression_tree_walker(node, check_purity, purity);
}

/* The stage of site n: 1 + its dependencies' latest, 0 when not speculable. */
static int
stage_of(List *sites, int n, Bitmapset *depends)
{
	int			stage = 1;
	int			d = -1;

	while ((d = bms_next_member(depends, d)) >= 0)
	{
		PlannedSite *depend = list_nth(sites, d);

		if (d == n || depend->stage <= 0)
			return 0;
		stage = Max(stage, depend->stage + 1);
	}
	return stage > BATCH_MAX_STAGES ? 0 : stage;
}

static void
analyze_sites(List *sites)
{
	Bitmapset **depends = palloc0(sizeof(Bitmapset *) * Max(list_length(sites), 1));
	bool	   *pure = palloc0(sizeof(bool) * Max(list_length(sites), 1));
	ListCell   *lc;

	foreach(lc, sites)
	{
		PlannedSite *site = lfirst(lc);
		Purity		purity = {sites, true, true, NULL};

		if (site->stage < 0)
			continue;
		(void) check_purity((Node *) site->condition, &purity);
		if (purity.pure)
			(void) expression_tree_walker((Node *) site->call, check_purity, &purity);
		pure[foreach_current_index(lc)] = purity.pure;
		depends[foreach_current_index(lc)] = purity.depends;
		site->flags = purity.cannot_fail ? BATCH_SITE_CANNOT_FAIL : 0;
	}
	foreach(lc, sites)
		((PlannedSite *) lfirst(lc))->stage = 0;
	/* dependencies may come later in the walk's order: settle the stages */
	for (int pass = 0; pass < list_length(sites); pass++)
	{
		bool		changed = false;

		foreach(lc, sites)
		{
			PlannedSite *site = lfirst(lc);
			int			n = foreach_current_index(lc);
			int			stage = pure[n] ? stage_of(sites, n, depends[n]) : 0;

			changed |= stage != site->stage;
			site->stage = stage;
		}
		if (!changed)
			break;
	}
	foreach(lc, sites)
	{
		PlannedSite *site = lfirst(lc);
		int			d = -1;

		if (site->stage == 0)
		{
			site->flags = 0;
			continue;
		}
		site->flags |= BATCH_SITE_SPECULABLE;
		while ((d = bms_next_member(depends[foreach_current_index(lc)], d)) >= 0)
		{
			if (!(((PlannedSite *) list_nth(sites, d))->flags & BATCH_SITE_CANNOT_FAIL))
				site->flags &= ~BATCH_SITE_CANNOT_FAIL;
		}
	}
	/* equal calls under equal conditions share their answers, but text generation's */
	foreach(lc, sites)
	{
		PlannedSite *site = lfirst(lc);

		if (site->kind == BATCH_INVOKE_MODEL)
			continue;
		for (int j = 0; j < foreach_current_index(lc); j++)
		{
			PlannedSite *earlier = list_nth(sites, j);

			if (earlier->same_as < 0 && equal(earlier->call, site->call) &&
				equal(earlier->condition, site->condition))
			{
				site->same_as = j;
				site->stage = earlier->stage;
				site->flags = earlier->flags;
				break;
			}
		}
	}
}

List *
batch_sites_of_own(List *computed, List *quals, List *targetlist)
{
	List	   *sites = walk_own(computed, quals, targetlist, true);

	analyze_sites(sites);
	return sites;
}

List *
batch_sites_of_aggregates(List *targetlist, List *quals)
{
	SiteWalk	context = {true, NIL};

	walk_aggregates((Node *) targetlist, &context);
	walk_aggregates((Node *) quals, &context);
	analyze_sites(context.sites);
	return context.sites;
}

static bool
calls_in_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (batch_is_call(node))
		return true;
	return expression_tree_walker(node, calls_in_walker, context);
}

bool
batch_calls_in(Node *expr)
{
	return calls_in_walker(expr, NULL);
}
