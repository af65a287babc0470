/*
 * deliberate_errors.h: errors the Python layer raises on purpose, reported
 * as PostgreSQL reports its own (deliberate_errors.c).
 */
#ifndef AWS_ML_DELIBERATE_ERRORS_H
#define AWS_ML_DELIBERATE_ERRORS_H

extern void deliberate_errors_init(void);

/* bound by the Python layer (plpython/aws_ml/backend.py) */
extern PGDLLEXPORT void aws_ml_raising(const char *plpython_form, const char *message);

#endif
