/*
 * python_lock.h: Python's global interpreter lock released while the server
 * works, taken back for the PL/Python functions it calls meanwhile.
 */
#ifndef AWS_ML_PYTHON_LOCK_H
#define AWS_ML_PYTHON_LOCK_H

extern void python_lock_init(void);
extern void python_release(void);
extern void python_take_back(void);

#endif
