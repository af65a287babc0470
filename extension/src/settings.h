/*
 * settings.h: the aws_ml.* settings (GUCs).
 */
#ifndef AWS_ML_SETTINGS_H
#define AWS_ML_SETTINGS_H

extern void settings_define(void);

#endif
