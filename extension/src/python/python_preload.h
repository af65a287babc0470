/*
 * python_preload.h: Python and the package loaded in the postmaster
 * (python_preload.c).
 */
#ifndef AWS_ML_PYTHON_PRELOAD_H
#define AWS_ML_PYTHON_PRELOAD_H

extern void python_preload(void);

#endif
