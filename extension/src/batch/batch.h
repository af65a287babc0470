/*
 * batch.h: batch mode, as on Aurora, with row by row's answers.
 *
 * PostgreSQL evaluates a query's calls of the aws_ml functions exactly as
 * it would row by row: same nodes, same expressions, same order, same
 * number of calls. Batch mode only changes where a call's answer comes
 * from. A Custom Scan ("AwsMlBatch") below the expressions that make the
 * calls reads a batch of rows ahead, works out for each row which calls
 * the row will make and with which arguments (speculatively: in a
 * subtransaction, so that an error there is the row's own, raised only if
 * the query reaches it), and asks the service for the whole batch at once.
 * When the query then evaluates a call, the call finds its row's answer if
 * its arguments are exactly those asked about, and makes the request
 * itself otherwise.
 *
 * functions.c  which functions batch, and their batch-mode forms
 * plan.c       where the node goes, in finished plans (planner and executor hooks),
 *              with read_ahead.c and shapes.c
 * sites.c      the calls a node serves, their arguments and the conditions under which a row makes them
 * dispatch.c   the calls' answers: a call finds its row's answer, or makes its request
 * scan.c       the node: reads batches ahead, returns rows
 * prefetch.c   a batch's calls worked out ahead, stage by stage
 * ask.c        asking the service for them
 * explain.c    EXPLAIN's lines and the parallel workers' counts
 */
#ifndef AWS_ML_BATCH_H
#define AWS_ML_BATCH_H

#include "nodes/execnodes.h"
#include "nodes/extensible.h"
#include "nodes/plannodes.h"
#include "nodes/primnodes.h"

/* The functions batch mode batches. */
typedef enum BatchFunctionKind
{
	BATCH_DETECT_SENTIMENT,
	BATCH_INVOKE_ENDPOINT,
	BATCH_INVOKE_MODEL,
	BATCH_INVOKE_MODEL_GET_EMBEDDINGS,
	NUM_BATCH_FUNCTIONS
} BatchFunctionKind;

/* Its row function's leading arguments that the batch-mode form takes as
 * they are; SageMaker's further arguments (the model inputs) become one CSV
 * row per call. */
#define BATCH_MAX_ARGS 4

typedef struct BatchFunction
{
	const char *schema;
	const char *name;
	int			nargs;			/* the row function's arguments, VARIADIC "any" as one */
	Oid			argtypes[BATCH_MAX_ARGS];
	const char *rows_name;		/* its batch-mode form, in the same schema */
	int			max_rows_arg;	/* the max_rows_per_batch argument, or -1 */
	bool		csv_inputs;		/* arguments from nargs - 1 on: the model inputs */
} BatchFunction;

extern const BatchFunction batch_functions[NUM_BATCH_FUNCTIONS];

/* functions.c */
extern void batch_functions_init(void);
extern int	batch_function_kind(Oid funcid);
extern bool batch_is_call(Node *node);
extern bool batch_functions_in(List *inval_items);
extern Oid	batch_rows_function(BatchFunctionKind kind);

/* aws_ml.batch_mode */
extern bool batch_mode;

/* Documents a query may ask for beyond twice those row by row asks for: one request's worth. */
#define BATCH_BILL_SLACK 25

/* The Custom Scan's name in EXPLAIN and in serialized plans. */
#define BATCH_SCAN_NAME "AwsMlBatch"

extern const CustomScanMethods batch_scan_methods;

/*
 * How a node serves its calls:
 * BATCH_SERVES_OWN  the calls are in the node's own expressions: the node
 *                   took over the quals and targetlist of the plan node it
 *                   replaced, whose child now computes the rest (and the
 *                   value of a function in FROM that read the rows before
 *                   it, as a column the node computes for each row);
 * BATCH_SERVES_PARENT  the calls are in the arguments of its parent's
 *                   aggregates; it returns its child's rows as they are.
 */
typedef enum BatchServes
{
	BATCH_SERVES_OWN,
	BATCH_SERVES_PARENT
} BatchServes;

/*
 * What plan.c puts into a CustomScan's custom_private (a list of Integers)
 * and custom_exprs: custom_private holds, in order, how it serves its calls,
 * the number of the child's columns and the number of computed columns;
 * then, for each call
 * it serves (in the order of sites.c's walk), its kind, its stage (calls
 * whose conditions or arguments need other calls' answers come in later
 * stages; 0: never asked ahead), its flags and the earlier site whose
 * answers it shares (-1: none). custom_exprs holds for each call a List of its
 * condition (NULL: always) and a copy of the call. The computed columns are the
 * entries of custom_scan_tlist after the child's columns.
 */
#define BATCH_PRIVATE_SERVES 0
#define BATCH_PRIVATE_CHILD_COLUMNS 1
#define BATCH_PRIVATE_COMPUTED_COLUMNS 2
#define BATCH_PRIVATE_SITES 3
#define BATCH_PRIVATE_PER_SITE 4

/* A call's flags. */
#define BATCH_SITE_SPECULABLE 0x01	/* its condition and arguments can be evaluated ahead */
#define BATCH_SITE_CANNOT_FAIL 0x02 /* ... without a subtransaction (parallel mode) */

/* plan.c */
extern void batch_plan_init(void);

/* scan.c */
extern void batch_scan_init(void);

/* dispatch.c: once the executor has started a plan, the nodes that serve
 * their parents' calls find them */
extern void batch_attach_parents(PlanState *root);

#endif
