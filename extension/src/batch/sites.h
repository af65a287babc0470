/*
 * sites.h: the calls a batching node serves ("sites"), in one order that
 * planning and execution share, with the condition under which a row makes
 * each of them.
 */
#ifndef AWS_ML_BATCH_SITES_H
#define AWS_ML_BATCH_SITES_H

#include "nodes/pg_list.h"
#include "nodes/primnodes.h"

/* The most stages of calls whose conditions or arguments need other calls' answers. */
#define BATCH_MAX_STAGES 4

/* A call as planning finds it. */
typedef struct PlannedSite
{
	FuncExpr   *call;
	Expr	   *condition;		/* when a row makes the call; NULL: always */
	int			kind;			/* BatchFunctionKind */
	int			stage;			/* 1..BATCH_MAX_STAGES; 0: never asked ahead */
	int			flags;			/* BATCH_SITE_* */
	int			same_as;		/* an earlier site it shares its answers with, or -1 */
} PlannedSite;

/*
 * The sites of a node that serves the calls of its own expressions: the
 * computed columns (each evaluated for every row), then the quals (in
 * order, as ExecQual stops at the first that is not true), then the
 * targetlist (for the rows that pass).
 */
extern List *batch_sites_of_own(List *computed, List *quals, List *targetlist);

/* The sites in the arguments and FILTERs of the aggregates of an Agg. */
extern List *batch_sites_of_aggregates(List *targetlist, List *quals);

/* The same walks at execution: the calls only, in the same order. */
extern List *batch_calls_of_own(List *computed, List *quals, List *targetlist);
extern List *batch_calls_of_aggregates(List *targetlist, List *quals);

/* Whether expr calls a function batch mode batches. */
extern bool batch_calls_in(Node *expr);

#endif
