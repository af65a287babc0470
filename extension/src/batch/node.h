/*
 * node.h: the batching node's execution state, shared by scan.c (the
 * node), prefetch.c (a batch's requests), dispatch.c (the calls' answers)
 * and explain.c.
 */
#ifndef AWS_ML_BATCH_NODE_H
#define AWS_ML_BATCH_NODE_H

#include "commands/explain.h"
#include "nodes/execnodes.h"
#include "utils/hsearch.h"

#include "batch/batch.h"
#include "sagemaker/csv.h"

/* What a batch holds for one site and one row. */
typedef enum Answer
{
	ANSWER_NONE = 0,			/* not evaluated ahead: the row's call makes its own request */
	ANSWER_SKIPPED,				/* evaluated ahead: the row does not make the call, or its evaluation failed */
	ANSWER_ASKED,				/* the row makes the call: to ask for */
	ANSWER_READY,				/* the answer is held */
	ANSWER_REFUSED,				/* the service refused the row's input: its call raises its own error */
	ANSWER_FAILED				/* the request failed: the call raises the error held */
} Answer;

struct BatchSite;

/* What a redirected call's fcinfo->context points at (dispatch.c). */
typedef struct SiteCall
{
	NodeTag		type;			/* T_ExtensibleNode: no node anyone else expects */
	struct BatchSite *site;
	bool		speculative;	/* evaluated ahead: an answer or an error, never a request */
} SiteCall;

typedef struct BatchSite
{
	struct BatchScanState *node;
	BatchFunctionKind kind;
	int			stage;
	int			flags;
	struct BatchSite *held;		/* whose answers it uses: itself, or an equal earlier site */
	FuncExpr   *planned;		/* its call as planning wrote it (custom_exprs) */
	FuncExpr   *call;			/* the call the executor evaluates */
	bool		redirected;		/* found among the steps evaluated */
	bool		wanted;			/* it, or a site sharing its answers, is redirected */
	PGFunction	function;		/* the call's own function */
	bool		counts_its_calls;	/* its function counts its calls itself */
	FmgrInfo	counted;		/* the function as pg_stat_user_functions counts it */
	bool		strict;
	int16		resultlen;
	bool		resultbyval;
	SiteCall	live;
	SiteCall	ahead;

	/* asking ahead */
	ExprState  *condition;
	int			nargs;
	ExprState **args;
	int16	   *arglen;
	bool	   *argbyval;
	Bitmapset  *depends;		/* sites whose answers its condition or arguments read */
	Bitmapset  *columns;		/* computed columns they read (0-based) */
	Bitmapset  *params;			/* PARAM_EXEC ids they read */
	CsvType    *input_types;	/* SageMaker's model inputs, args from 2 on */
	FmgrInfo	rows;			/* the batch-mode form */
	int			max_rows;		/* a constant max_rows_per_batch; 0: none */

	/* the bill (bill.c), over every rescan */
	HTAB	   *inputs;			/* the inputs asked for, and whether a call took each */
	int64		inputs_asked;
	int64		inputs_taken;

	/* per row of the batch */
	char	   *answer;			/* Answer */
	Datum	   *arg_values;		/* nrows * nargs */
	bool	   *arg_nulls;
	Datum	   *csv_lines;		/* SageMaker's model inputs as the request's CSV row */
	uint64	   *input_hashes;	/* the input's, once asked for */
	Datum	   *values;
	bool	   *nulls;
	ErrorData **errors;
} BatchSite;

/* EXPLAIN ANALYZE's Batch Processing: a process's batches */
typedef struct BatchCounts
{
	int64		batches;
	double		size_sum;
	int			size_min;
	int			size_max;
	double		time_sum;
	double		time_min;
	double		time_max;
} BatchCounts;

/* Under a Gather, the workers' counts, each its own (parallel DSM) */
typedef struct SharedBatchCounts
{
	int			nworkers;
	BatchCounts workers[FLEXIBLE_ARRAY_MEMBER];
} SharedBatchCounts;

typedef struct BatchScanState
{
	CustomScanState css;
	BatchServes serves;
	int			nchild;			/* scan tuple: the child's columns, then the computed ones */
	int			ncomputed;
	ExprState **computed;		/* over the child's row */
	ExprState **computed_ahead; /* the same, their calls answered from the batch only */
	Bitmapset **computed_sites; /* the sites each computed column calls */
	int			nsites;
	BatchSite  *sites;
	bool		off;			/* aws_ml.batch_mode was off when it started: row by row */
	LimitState *limit;			/* a Limit right above it, whose bound it passes on */
	int			cap;			/* rows a batch holds at most */
	int			slack;			/* the inputs a site may ask for beyond twice those taken: its share of 25 */
	TupleTableSlot *child_row;
	ExprContext *ahead_context; /* asking ahead's evaluation */
	ExprContext *rows_context;	/* the batch-mode forms' set-returning protocol */
	MemoryContext batch_context;
	ScanState  *scanned;		/* WHERE CURRENT OF: the scan whose row the node returns */

	/* the batch */
	MinimalTuple *rows;
	ItemPointerData *tids;
	Oid		   *table_oids;
	int			nrows;
	int			next;			/* the next row to return */
	int			current;		/* the row whose calls are evaluated; -1: none */
	bool		child_done;

	/* rows read from the child: over every scan, and since the last rescan with the rows used */
	int64		fetched;
	int64		scan_fetched;
	int64		scan_processed;

	/* asking ahead: where it is, so that an error resumes after its row */
	int			ahead_row;
	int			ahead_site;
	/* rows from ask_limit on are asked for once the query gets to resume_row (-1: all asked) */
	int			ask_limit;
	int			resume_row;

	BatchCounts counts;			/* this process's */
	BatchCounts workers;		/* the parallel workers', collected by the leader */
	SharedBatchCounts *shared;
} BatchScanState;

/* prefetch.c */
typedef void (*BatchAttempt) (BatchScanState *node, ExprContext *econtext, void *arg);

extern void batch_prefetch(BatchScanState *node, int from);
extern void batch_site_init_ahead(BatchScanState *node, BatchSite *site, List *planned);
extern ErrorData *batch_in_subtransaction(BatchScanState *node, BatchAttempt attempt, void *arg,
										  MemoryContext error_memory);
extern Datum batch_copy_value(BatchScanState *node, Datum value, bool isnull, bool byval, int16 len);

/* bill.c */
extern void batch_bill_asked(BatchSite *site, int row);
extern void batch_bill_taken(BatchSite *site, int row);
extern int64 batch_bill_rows(BatchScanState *node);

/* ask.c */
extern bool batch_ask_service(BatchScanState *node, BatchSite *site, bool parallel, int from);

/* dispatch.c */
extern Bitmapset *batch_redirect(ExprState *state, BatchScanState *node, bool ahead);
extern void batch_mark_wanted(BatchScanState *node);
extern int	batch_document_sites(BatchScanState *node);

/* scan.c */
extern void batch_load_row(BatchScanState *node, int row);

/* explain.c */
extern void batch_count(BatchScanState *node, int rows, double milliseconds);
extern void batch_count_more_time(BatchScanState *node, double milliseconds);
extern void batch_explain(CustomScanState *css, List *ancestors, ExplainState *es);
extern Size batch_estimate_dsm(CustomScanState *css, ParallelContext *pcxt);
extern void batch_initialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate);
extern void batch_reinitialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate);
extern void batch_initialize_worker(CustomScanState *css, shm_toc *toc, void *coordinate);
extern void batch_collect_worker_counts(CustomScanState *css);

#endif
