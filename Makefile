# aws_ml and aws_commons for PostgreSQL (PGXS). `make install` installs, for
# the PostgreSQL of $(PG_CONFIG): both extensions' control and SQL files, the C
# module (into $libdir/plugins, which non-superusers may LOAD), and the aws_ml
# Python package with its pinned dependencies into a versioned directory for
# the Python that plpython3u is linked against.

EXTENSION = aws_ml
DATA = extension/aws_commons.control extension/aws_commons--1.0.sql
DATA_built = aws_ml--1.0.sql aws_ml--1.0--2.0.sql
MODULE_big = aws_ml
OBJS = extension/src/aws_ml.o extension/src/backend.o extension/src/settings.o \
	extension/src/csv.o extension/src/invoke_endpoint.o \
	extension/src/batch_functions.o extension/src/batch_plan.o extension/src/batch_scan.o
PG_CPPFLAGS = -Werror=implicit-function-declaration -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

# pg_regress suites (make installcheck): plans and EXPLAIN; they send no request.
REGRESS = batch_mode
REGRESS_OPTS = --inputdir=tests/regress --outputdir=tests/regress

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PYTHON_DIR = $(pkglibdir)/aws_ml-python/$(VERSION)
MODULE_PATHNAME = $$libdir/plugins/aws_ml

# The interpreter plpython3u runs: the one whose libpython the handler links.
PLPYTHON_SO = $(pkglibdir)/plpython3$(DLSUFFIX)
PLPYTHON_PYTHON ?= $(shell ldd $(PLPYTHON_SO) | sed -n 's,.*libpython\(3\.[0-9]*\).*,/usr/bin/python\1,p' | head -n 1)

$(DATA_built): %: %.in pyproject.toml Makefile
	sed -e 's,@PYTHON_DIR@,$(PYTHON_DIR),g' -e 's,@MODULE_PATHNAME@,$(MODULE_PATHNAME),g' $< > $@

install: install-plugin install-python

.PHONY: install-plugin install-python
# PGXS installs the shared library into $libdir; move it into $libdir/plugins.
install-plugin: install-lib
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)/plugins'
	mv -f '$(DESTDIR)$(pkglibdir)/aws_ml$(DLSUFFIX)' '$(DESTDIR)$(pkglibdir)/plugins/aws_ml$(DLSUFFIX)'

install-python:
	@test -n "$(PLPYTHON_PYTHON)" || { echo "cannot find the Python of $(PLPYTHON_SO): is postgresql-plpython3 installed? set PLPYTHON_PYTHON" >&2; exit 1; }
	scripts/install-python-package '$(PLPYTHON_PYTHON)' '$(DESTDIR)$(PYTHON_DIR)'
