# PostgreSQL 15 with aws_ml installed by scripts/install-extension, the script
# the tests' setup runs too. For real AWS, give the server credentials and a
# Region (docs/operations.md):
#   docker run -e POSTGRES_PASSWORD=... -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#       -e AWS_SESSION_TOKEN aws-ml-postgres -c aws_ml.region=us-east-1
FROM postgres:15-bookworm

WORKDIR /usr/src/aws_ml
COPY Makefile pyproject.toml aws_ml.control aws_ml--1.0.sql aws_ml--1.0--2.0.sql aws_ml--2.0--2.1.sql aws_ml--2.1--2.2.sql aws_s3.control \
     aws_s3--1.0.sql aws_s3--1.0--1.1.sql aws_s3--1.1--1.2.sql aws_s3--1.2--1.3.sql ./
COPY extension/ extension/
COPY plpython/ plpython/
COPY scripts/install-extension scripts/install-missing-packages scripts/install-python-package scripts/
RUN scripts/install-extension \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;' > /docker-entrypoint-initdb.d/aws_ml.sql
