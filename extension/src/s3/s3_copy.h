/*
 * s3_copy.h: COPY between the server and aws_s3's transfers, through a pipe.
 */
#ifndef AWS_ML_S3_COPY_H
#define AWS_ML_S3_COPY_H

extern void s3_copy_init(void);

/* bound by the Python layer (plpython/aws_ml/backend.py) */
extern PGDLLEXPORT int aws_s3_transfer_pipe(bool export, uint64 *token);

#endif
