/*
 * preload_plan.h: what preloading can do for the Python that PL/Python
 * links (preload_plan.c).
 */
#ifndef AWS_ML_PRELOAD_PLAN_H
#define AWS_ML_PRELOAD_PLAN_H

typedef enum PreloadPlan
{
	/* plpython3 is not installed: nothing to preload */
	PRELOAD_NOTHING,
	/* PL/Python started Python when it loaded: import the package into it */
	PRELOAD_IMPORT,
	/* start Python as PL/Python would, then import the package */
	PRELOAD_START_AND_IMPORT,
	/* Python may not be started before PL/Python starts it in the backend */
	PRELOAD_LIBRARIES_ONLY
} PreloadPlan;

extern PreloadPlan preload_plan(bool plpython_loaded, bool python_started, const char *python_version);

#endif
