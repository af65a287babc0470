/*
 * settings.h: the aws_ml.* settings (GUCs).
 */
#ifndef AWS_ML_SETTINGS_H
#define AWS_ML_SETTINGS_H

extern void settings_define(void);
extern uint64 settings_generation_now(void);

/* bound by the Python layer (plpython/aws_ml/backend.py) */
extern PGDLLEXPORT const char *aws_ml_settings(int *length);

#endif
