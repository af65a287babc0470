"""Imported by the postmaster when the aws_ml module is in
shared_preload_libraries (extension/src/python/python_path.c): the package, botocore
and the services' models, loaded once before the backends fork instead of in
each backend's first call."""
import importlib

from . import clients

for module in ("comprehend", "sagemaker", "bedrock", "materialize", "stats"):
    importlib.import_module(f"{__package__}.{module}")
clients.load_models()
