/*
 * aws_ml.c: the aws_ml module's entry: _PG_init and the planner support
 * function every aws_ml function names.
 */
#include "postgres.h"

#include "compat.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"

#include "python/backend.h"
#include "python/deliberate_errors.h"
#include "python/plpython_errors.h"
#include "batch/batch.h"
#include "python/python_path.h"
#include "python/python_preload.h"
#include "s3/s3_copy.h"
#include "settings.h"

PG_MODULE_MAGIC;

void
_PG_init(void)
{
	/*
	 * During a parallel operation PostgreSQL refuses to set parameters, so the
	 * server configuration's aws_ml.* values could not be applied and the
	 * session would silently run without them. Refuse to load instead, before
	 * changing anything: the library is not marked loaded, and the next load,
	 * outside a parallel operation, runs this again.
	 */
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_ml: the aws_ml module cannot be loaded during a parallel operation"),
				 errhint("Add '$libdir/plugins/aws_ml' to session_preload_libraries, or call an aws_ml "
						 "function once in the session before the parallel query.")));
	python_path_init();
	settings_define();
	batch_functions_init();
	batch_scan_init();
	batch_plan_init();
	s3_copy_init();
	deliberate_errors_init();
	plpython_errors_init();
	if (process_shared_preload_libraries_in_progress)
		python_preload();
	backend_mark_ready();
}

PG_FUNCTION_INFO_V1(aws_ml_plan_support);

/*
 * aws_ml._plan_support(internal): the planner support function of every
 * aws_ml function. It handles no request: the planner calling it loads this
 * module at plan time, before the executor can enter parallel mode, where
 * loading it fails (above). The functions' SET clause would otherwise delay
 * the load to their first call.
 */
Datum
aws_ml_plan_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(NULL);
}
