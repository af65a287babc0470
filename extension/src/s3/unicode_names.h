/*
 * unicode_names.h: names that came through PL/Python, which passes them in
 * Unicode.
 */
#ifndef AWS_ML_UNICODE_NAMES_H
#define AWS_ML_UNICODE_NAMES_H

#include "utils/relcache.h"

extern void refuse_names_shared_in_unicode(Relation rel, List *column_names);

#endif
