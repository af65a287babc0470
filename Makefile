# aws_ml, aws_s3 and aws_commons for PostgreSQL (PGXS). `make install` installs,
# for the PostgreSQL of $(PG_CONFIG): the extensions' control and SQL files, the C
# module (into $libdir/plugins, which non-superusers may LOAD), and the aws_ml
# Python package with its pinned dependencies for the Python that plpython3u is
# linked against, into $libdir/aws_ml-python/<version>: a link to a new
# directory each install, switched at once, so that running backends keep the
# one they loaded. `make uninstall` removes all of it.

EXTENSION = aws_ml aws_s3
DATA = extension/aws_commons.control extension/aws_commons--1.0.sql extension/aws_commons--1.0--1.1.sql \
	aws_ml--1.0.sql aws_ml--1.0--2.0.sql aws_ml--2.0--2.1.sql aws_ml--2.1--2.2.sql aws_s3--1.0.sql aws_s3--1.0--1.1.sql aws_s3--1.1--1.2.sql aws_s3--1.2--1.3.sql
MODULE_big = aws_ml
# One folder per feature under extension/src: batch mode, aws_s3's COPY, the
# Python plumbing, SageMaker's input; headers are included by folder.
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard extension/src/*.c extension/src/*/*.c)))

# pg_regress suites (make installcheck): plans and EXPLAIN; they send no request.
REGRESS = batch_mode
REGRESS_OPTS = --inputdir=tests/regress --outputdir=tests/regress

AWS_ML_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# Modules load with RTLD_GLOBAL: export only what PGDLLEXPORT marks
# (extension/src/compat.h), all of it named aws_ml_* or aws_s3_*.
PG_CPPFLAGS = -I$(srcdir)/extension/src -DAWS_ML_VERSION='"$(AWS_ML_VERSION)"' -fvisibility=hidden \
	-Werror=implicit-function-declaration -Wall -Wextra \
	-Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

# Each object's header dependencies (foo.d beside foo.o), so that a changed
# header rebuilds what includes it.
PG_CFLAGS += -MMD -MP
EXTRA_CLEAN = $(OBJS:.o=.d)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
-include $(OBJS:.o=.d)

PYTHON_DIR = $(pkglibdir)/aws_ml-python
# the module looks for the package of its own version
extension/src/python/python_path.o: pyproject.toml

# The interpreter plpython3u runs: the one whose libpython the handler links.
PLPYTHON_SO = $(pkglibdir)/plpython3$(DLSUFFIX)
PLPYTHON_PYTHON ?= $(shell ldd $(PLPYTHON_SO) | sed -n 's,.*libpython\(3\.[0-9]*\).*,/usr/bin/python\1,p' | head -n 1)

install: install-plugin install-python
uninstall: uninstall-plugin uninstall-python

.PHONY: install-plugin install-python uninstall-plugin uninstall-python
# PGXS installs the shared library into $libdir; move it into $libdir/plugins.
install-plugin: install-lib
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)/plugins'
	mv -f '$(DESTDIR)$(pkglibdir)/aws_ml$(DLSUFFIX)' '$(DESTDIR)$(pkglibdir)/plugins/aws_ml$(DLSUFFIX)'

install-python:
	@test -n "$(PLPYTHON_PYTHON)" || { echo "cannot find the Python of $(PLPYTHON_SO): is postgresql-plpython3 installed? set PLPYTHON_PYTHON" >&2; exit 1; }
	scripts/install-python-package '$(PLPYTHON_PYTHON)' '$(DESTDIR)$(PYTHON_DIR)' '$(AWS_ML_VERSION)' '$(PYTHON_DEPENDENCIES_FROM)'

uninstall-plugin:
	rm -f '$(DESTDIR)$(pkglibdir)/plugins/aws_ml$(DLSUFFIX)'

uninstall-python:
	rm -rf '$(DESTDIR)$(PYTHON_DIR)/$(AWS_ML_VERSION)' '$(DESTDIR)$(PYTHON_DIR)/$(AWS_ML_VERSION)'.*
	-rmdir '$(DESTDIR)$(PYTHON_DIR)' '$(DESTDIR)$(pkglibdir)/plugins' 2>/dev/null
