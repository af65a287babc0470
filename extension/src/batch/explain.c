/*
 * explain.c: what EXPLAIN shows of a batching node, and the counts of the
 * parallel workers' batches.
 *
 * VERBOSE lists each call asked ahead ("Batched Call"); ANALYZE prints
 * Aurora's "Batch Processing" line: the number of batches, their average,
 * smallest and largest number of rows, and the average, shortest and
 * longest time of a batch's requests. Under a Gather each worker keeps its
 * counts in shared memory, which the leader collects before the Gather
 * releases it.
 */
#include "postgres.h"

#include "compat.h"

#include "access/parallel.h"
#include "commands/explain.h"
#include "utils/ruleutils.h"

#include "batch/node.h"

/* Adds the batches of from to into. */
static void
add_counts(BatchCounts *into, const BatchCounts *from)
{
	if (from->batches == 0)
		return;
	into->size_min = into->batches ? Min(into->size_min, from->size_min) : from->size_min;
	into->time_min = into->batches ? Min(into->time_min, from->time_min) : from->time_min;
	into->size_max = Max(into->size_max, from->size_max);
	into->time_max = Max(into->time_max, from->time_max);
	into->batches += from->batches;
	into->size_sum += from->size_sum;
	into->time_sum += from->time_sum;
}

void
batch_count(BatchScanState *node, int rows, double milliseconds)
{
	BatchCounts batch = {1, rows, rows, rows, milliseconds, milliseconds, milliseconds};

	add_counts(&node->counts, &batch);
	if (IsParallelWorker() && node->shared)
		node->shared->workers[ParallelWorkerNumber] = node->counts;
}

/* A batch's requests made later, for its rows after a refused one: time, not another batch. */
void
batch_count_more_time(BatchScanState *node, double milliseconds)
{
	node->counts.time_sum += milliseconds;
	node->counts.time_max = Max(node->counts.time_max, milliseconds);
	if (IsParallelWorker() && node->shared)
		node->shared->workers[ParallelWorkerNumber] = node->counts;
}

void
batch_explain(CustomScanState *css, List *ancestors, ExplainState *es)
{
	BatchScanState *node = (BatchScanState *) css;

	if (es->verbose)
	{
		List	   *context = set_deparse_context_plan(es->deparse_cxt, css->ss.ps.plan, ancestors);

		for (int i = 0; i < node->nsites; i++)
		{
			BatchSite  *site = &node->sites[i];

			if (site->held == site && (site->flags & BATCH_SITE_SPECULABLE))
				ExplainPropertyText("Batched Call",
									deparse_expression((Node *) site->planned, context, true, false), es);
		}
	}
	if (es->analyze && node->off)
		ExplainPropertyText("Batch Processing", "off", es);
	else if (es->analyze)
	{
		StringInfoData line;
		BatchCounts counts = node->counts;
		double		batches;

		add_counts(&counts, &node->workers);
		batches = Max(counts.batches, 1);

		initStringInfo(&line);
		appendStringInfo(&line, "num batches=" INT64_FORMAT " avg/min/max batch size=%.3f/%.3f/%.3f",
						 counts.batches, counts.size_sum / batches, (double) counts.size_min,
						 (double) counts.size_max);
		if (es->timing)
			appendStringInfo(&line, " avg/min/max batch call time=%.3f/%.3f/%.3f",
							 counts.time_sum / batches, counts.time_min, counts.time_max);
		ExplainPropertyText("Batch Processing", line.data, es);
	}
}

Size
batch_estimate_dsm(CustomScanState *css, ParallelContext *pcxt)
{
	return add_size(offsetof(SharedBatchCounts, workers), mul_size(sizeof(BatchCounts), pcxt->nworkers));
}

void
batch_initialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate)
{
	BatchScanState *node = (BatchScanState *) css;

	node->shared = coordinate;
	memset(node->shared, 0, batch_estimate_dsm(css, pcxt));
	node->shared->nworkers = pcxt->nworkers;
}

/* Adds the workers' counts to the leader's collection and clears them. */
void
batch_collect_worker_counts(CustomScanState *css)
{
	BatchScanState *node = (BatchScanState *) css;

	if (node->shared == NULL || IsParallelWorker())
		return;
	for (int i = 0; i < node->shared->nworkers; i++)
	{
		add_counts(&node->workers, &node->shared->workers[i]);
		memset(&node->shared->workers[i], 0, sizeof(BatchCounts));
	}
}

void
batch_reinitialize_dsm(CustomScanState *css, ParallelContext *pcxt, void *coordinate)
{
	batch_collect_worker_counts(css);
}

void
batch_initialize_worker(CustomScanState *css, shm_toc *toc, void *coordinate)
{
	((BatchScanState *) css)->shared = coordinate;
}
