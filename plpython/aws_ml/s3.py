"""aws_s3's functions, with the signatures of RDS and Aurora: query results
to S3 objects and S3 objects into tables. The data goes through COPY in the C
module (extension/src/s3/s3_copy.c), so an export is byte for byte what COPY
(query) TO STDOUT writes, and an import is what COPY FROM reads, with the
caller's privileges. S3 is on the other side of a pipe (s3_transfer.py)."""
import concurrent.futures
import functools

from . import backend, clients, distributed, inflight, settings, wait
from .arguments import required
from .errors import AwsMlError, entry_of, invalid_argument, null_argument
from .s3_transfer import Export, Import
from .services import S3

_plans = {}
_CLEANUP_SECONDS = 10
FEATURE_NOT_SUPPORTED = "0A000"


def _execute(sql, types, values):
    import plpy
    if sql not in _plans:
        _plans[sql] = plpy.prepare(sql, types)
    return plpy.execute(_plans[sql], values)


def _location(s3_info):
    """(bucket, key, region or None) of an aws_commons._s3_uri_1."""
    if s3_info is None:
        raise null_argument("s3_info")
    region = s3_info["region"]
    if region is not None and not settings.REGION.fullmatch(region):
        raise invalid_argument(f"region {region!r} is not the name of an AWS Region",
                               hint="Give one such as us-east-1, or NULL for aws_ml.region.")
    return required("bucket", s3_info["bucket"]), required("file_path", s3_info["file_path"]), region


def _given_credentials(credentials):
    """An aws_commons._aws_credentials_1 as botocore's credentials, or None
    when the call gives none."""
    if credentials is None or not any(credentials.values()):
        return None
    if not (credentials["access_key"] and credentials["secret_key"]):
        raise invalid_argument("credentials need both an access_key and a secret_key",
                               hint="Pass all of them, or none to use the server's.")
    if not all(_is_token_text(value) for value in credentials.values() if value is not None):
        # never echoed: they are secrets
        raise invalid_argument("credentials must be printable ASCII without spaces, as AWS issues them")
    return {"AccessKeyId": credentials["access_key"], "SecretAccessKey": credentials["secret_key"],
            "SessionToken": credentials["session_token"]}


def _is_token_text(value):
    return value != "" and all("!" <= character <= "~" for character in value)


def _layout(options):
    """COPY's output format with options ({format, quote, escape, header, ascii_safe}),
    checked as COPY checks them: before any request."""
    return _execute("SELECT format, quote, escape, header, ascii_safe FROM aws_s3._copy_layout($1)",
                    ["pg_catalog.text"], [options])[0]


def _raise_failure(transfer):
    """After COPY or the transfer failed: the transfer's own error if it had
    one (COPY then failed because the pipe closed), PostgreSQL's if the
    statement was cancelled; else the caller re-raises COPY's."""
    transfer.abandon()
    if isinstance(transfer.error, AwsMlError):
        raise transfer.error from None
    wait.check_for_interrupts()


@entry_of("aws_s3")
def query_export_to_s3(query, s3_info, options, kms_key):
    """(rows_uploaded, files_uploaded, bytes_uploaded) of COPY (query) TO
    s3_info's object with options; SSE-KMS with kms_key."""
    required("query", query)
    bucket, key, region = _location(s3_info)
    layout = _layout(options)
    current = settings.current()
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    client = clients.client_for(S3, current, region)
    pipe, token = backend.transfer_pipe(export=True)
    export = Export(client, pipe, bucket, key, encryption, current.s3_max_file_size_kb * 1024, layout)
    export.start()
    try:
        rows = _execute("SELECT aws_s3._copy_query_to_pipe($1, $2, $3) AS rows",
                        ["pg_catalog.text", "pg_catalog.text", "pg_catalog.int8"],
                        [query, options, token])[0]["rows"]
        export.finish()
    except BaseException:
        try:
            _raise_failure(export)
        finally:
            _discard(export)
        raise
    return rows, len(export.objects), export.bytes


def _discard(export):
    """Removes what a failed export wrote: no object, no open multipart
    upload. The requests go out together and get _CLEANUP_SECONDS in all;
    a WARNING names what is left."""
    flight = inflight.Flight()
    futures = {wait.submit(flight, functools.partial(each.discard, export.client)): each for each in export.objects}
    done, _ = concurrent.futures.wait(futures, _CLEANUP_SECONDS)
    flight.ground()
    import plpy
    for future, each in futures.items():
        if future not in done or future.exception() is not None:
            what = f"multipart upload {each.upload_id} of" if each.upload_id and not each.complete else "object"
            plpy.warning(f"aws_s3: could not remove the {what} s3://{each.bucket}/{each.key} of the failed export",
                         hint="Remove it, and give the bucket a lifecycle rule that aborts incomplete "
                              "multipart uploads.")
        elif each.put_unanswered:
            plpy.warning(f"aws_s3: S3 may hold s3://{each.bucket}/{each.key} from the failed export: its PutObject "
                         "got no answer",
                         hint="Check the object: it is this export's start, or what was there before.")


@entry_of("aws_s3")
def table_import_from_s3(table_name, column_list, options, s3_info, credentials):
    """COPY table_name (column_list) FROM s3_info's object with options; AWS's
    summary of it."""
    required("table_name", table_name)
    if distributed.managed_by_citus(table_name):
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"aws_s3.table_import_from_s3 cannot import into {table_name}, a "
                         "Citus table: its COPY runs inside the server, where Citus does not see it, and would "
                         "write only this node's own relation",
                         hint="Import into a plain table, then INSERT INTO the Citus table SELECT from it "
                              "(docs/scaling.md).")
    bucket, key, region = _location(s3_info)
    client = clients.client_for(S3, settings.current(), region, _given_credentials(credentials))
    pipe, token = backend.transfer_pipe(export=False)
    transfer = Import(client, pipe, bucket, key)
    transfer.start()
    try:
        transfer.opened()
        rows = _execute("SELECT aws_s3._copy_pipe_to_table($1, $2, $3, $4) AS rows",
                        ["pg_catalog.text"] * 3 + ["pg_catalog.int8"],
                        [table_name, column_list, options, token])[0]["rows"]
        transfer.finish()
    except BaseException:
        _raise_failure(transfer)
        raise
    return f'{rows} rows imported into relation "{table_name}" from file {key} of {transfer.size} bytes'
