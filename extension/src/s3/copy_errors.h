/*
 * copy_errors.h: errors of the COPY an aws_s3 call runs, as PL/Python can take them.
 */
#ifndef AWS_ML_S3_COPY_ERRORS_H
#define AWS_ML_S3_COPY_ERRORS_H

#include "nodes/pg_list.h"

/*
 * Marks where an error's context stops being the COPY's own; on the error
 * context stack while the COPY runs (begin_own_context, end_own_context).
 */
typedef struct OwnContext
{
	ErrorContextCallback callback;
	MemoryContext records;		/* holds seen */
	List	   *seen;			/* the own contexts of the last errors, latest last */
} OwnContext;

extern void begin_own_context(OwnContext *own);
extern void end_own_context(OwnContext *own);
extern void rethrow_for_plpython(MemoryContext context, const OwnContext *own);

#endif
