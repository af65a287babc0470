/*
 * batch.h: batch mode, as on Aurora: the calls of aws_ml functions that a
 * plan evaluates row by row are evaluated for a batch of rows at a time by a
 * Custom Scan, through the same Python path as the batch functions.
 *
 * batch_functions.c  which functions batch, and their batch-mode forms
 * batch_plan.c       finds the calls in finished plans and places the node
 * batch_scan.c       the node: buffers rows, calls, returns them one by one
 */
#ifndef AWS_ML_BATCH_H
#define AWS_ML_BATCH_H

#include "nodes/execnodes.h"
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

extern void batch_functions_init(void);
extern int	batch_function_kind(Oid funcid);
extern bool batch_functions_in(List *inval_items);
extern Oid	batch_rows_function(BatchFunctionKind kind);

/* aws_ml.batch_mode */
extern bool batch_mode;

extern void batch_plan_init(void);
extern void batch_scan_init(void);

/* The Custom Scan's name in EXPLAIN and in serialized plans. */
#define BATCH_SCAN_NAME "AwsMlBatch"

/*
 * What batch_plan.c puts into a CustomScan's custom_private, a list of
 * Integers: the number of child columns, the row bound of the first batch
 * (0: none), then for each call its kind and whether its results are
 * needed by the node's qual. The calls themselves are the entries of
 * custom_scan_tlist after the child columns.
 */
#define BATCH_PRIVATE_CHILD_COLUMNS 0
#define BATCH_PRIVATE_BOUND 1
#define BATCH_PRIVATE_CALLS 2

#endif
