/*
 * python_exit.h: the package's threads stopped before the process exits
 * (python_exit.c).
 */
#ifndef AWS_ML_PYTHON_EXIT_H
#define AWS_ML_PYTHON_EXIT_H

extern PGDLLEXPORT void aws_ml_stop_threads_at_exit(void);

#endif
