/*
 * bill.c: how many rows the next batch may read, from the inputs asked.
 *
 * Row by row asks for each distinct input of a statement once (its
 * statement cache answers the input again), so what row by row would have
 * paid for the rows the query used is the number of distinct inputs among
 * the calls that took their answers. For each site that asks ahead the
 * node keeps, over every rescan, the inputs it asked for and those the
 * query's calls took; a batch reads no more rows than keep the inputs
 * asked within twice the inputs taken plus the node's slack, since each row
 * read asks for at most one more input a site. Counting rows instead of
 * inputs let rows that repeat one input grow the batches as if each had
 * cost a document: 30 rows asking about one text and the query stopped by
 * the 31st, row by row pays 2 documents and the batches had asked for 46.
 *
 * An input is known by a 64-bit hash of the call's arguments: a collision
 * only makes a batch smaller or larger, never an answer another's
 * (dispatch.c compares the arguments themselves).
 */
#include "postgres.h"

#include "compat.h"

#include "common/hashfn.h"
#include "utils/hsearch.h"

#include "batch/node.h"

typedef struct InputEntry
{
	uint64		hash;			/* the key */
	bool		taken;			/* a call of the query took its answer */
} InputEntry;

static uint64
hash_argument(Datum value, bool isnull, bool byval, int16 len)
{
	if (isnull)
		return UINT64CONST(0x9e3779b97f4a7c15);
	if (byval)
		return hash_bytes_extended((const unsigned char *) &value, sizeof(Datum), 0);
	if (len == -1)
	{
		struct varlena *detoasted = PG_DETOAST_DATUM_PACKED(value);
		uint64		hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(detoasted),
											   VARSIZE_ANY_EXHDR(detoasted), 0);

		if ((Pointer) detoasted != DatumGetPointer(value))
			pfree(detoasted);
		return hash;
	}
	if (len == -2)
		return hash_bytes_extended((const unsigned char *) DatumGetCString(value),
								   strlen(DatumGetCString(value)), 0);
	return hash_bytes_extended((const unsigned char *) DatumGetPointer(value), len, 0);
}

static InputEntry *
enter_input(BatchSite *site, uint64 hash)
{
	InputEntry *entry;
	bool		found;

	if (site->inputs == NULL)
	{
		HASHCTL		control;

		control.keysize = sizeof(uint64);
		control.entrysize = sizeof(InputEntry);
		control.hcxt = site->node->css.ss.ps.state->es_query_cxt;
		site->inputs = hash_create("aws_ml batch inputs", 256, &control,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(site->inputs, &hash, HASH_ENTER, &found);
	if (!found)
	{
		entry->taken = false;
		site->inputs_asked++;
	}
	return entry;
}

/* Notes that row of site asks for its input: its arguments are evaluated. */
void
batch_bill_asked(BatchSite *site, int row)
{
	uint64		hash = 0;

	for (int i = 0; i < site->nargs; i++)
	{
		Size		at = (Size) row * site->nargs + i;

		hash = hash_combine64(hash, hash_argument(site->arg_values[at], site->arg_nulls[at],
												  site->argbyval[i], site->arglen[i]));
	}
	site->input_hashes[row] = hash;
	(void) enter_input(site, hash);
}

/* Notes that a call of the query took the answer asked for row of site. */
void
batch_bill_taken(BatchSite *site, int row)
{
	InputEntry *entry = enter_input(site, site->input_hashes[row]);

	if (!entry->taken)
	{
		entry->taken = true;
		site->inputs_taken++;
	}
}

/* The rows the next batch may read (at least 1). */
int64
batch_bill_rows(BatchScanState *node)
{
	int64		rows = node->cap;

	for (int i = 0; i < node->nsites; i++)
	{
		BatchSite  *site = &node->sites[i];

		if (site->held == site && site->wanted)
			rows = Min(rows, 2 * site->inputs_taken + node->slack - site->inputs_asked);
	}
	return Max(rows, 1);
}
