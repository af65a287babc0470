/*
 * plan.h: what the files that put batching nodes into finished plans share.
 *
 * plan.c        the hooks, the walk over a statement's plans, the node itself
 * read_ahead.c  whether a node may read rows ahead of the query
 * shapes.c      the three places a node goes
 */
#ifndef AWS_ML_BATCH_PLAN_H
#define AWS_ML_BATCH_PLAN_H

#include "nodes/plannodes.h"

#include "batch/batch.h"

/* The rewriting of one statement. */
typedef struct Rewrite
{
	PlannedStmt *stmt;
	int			next_plan_node_id;
	int			under_gather;	/* below a Gather: each worker runs its own copy */
	bool		changed;
} Rewrite;

/* A batching node to make. */
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

/* plan.c */
extern Var *batch_column_var(int varno, int attno, Node *expr);
extern CustomScan *batch_make_scan(NewNode *node, Rewrite *rewrite);
extern bool batch_any_speculable(List *sites);
extern void batch_for_each_child(Plan *plan, void (*walker) (Plan **, void *), void *context);

/* read_ahead.c */
extern bool batch_reads_ahead_unobservably(Plan *plan, Rewrite *rewrite);
extern bool batch_reads_ahead_below(Plan *plan, List *tlist, List *joinqual, List *qual, Rewrite *rewrite);

/* shapes.c */
extern Plan *batch_own(Plan *plan, Rewrite *rewrite);
extern Plan *batch_lateral_function(NestLoop *join, Rewrite *rewrite, Plan *(*rewrite_child) (Plan *, Rewrite *));
extern void batch_aggregates(Agg *agg, Rewrite *rewrite);

#endif
