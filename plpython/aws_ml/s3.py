"""aws_s3's functions, with the signatures of RDS and Aurora: query results
to S3 objects and S3 objects into tables. The data goes through COPY in the C
module (extension/src/s3/s3_copy.c), so an export is byte for byte what COPY
(query) TO STDOUT writes, and an import is what COPY FROM reads, with the
caller's privileges. S3 is on the other side of a pipe, which this backend's
transfer process reads or writes (transfer_process.py, s3_transfer.py)."""
from typing import Any, Dict, List, Optional, Tuple

from . import backend, clients, distributed, read_only, settings, transfer_process, wait
from .arguments import required
from .clients import ClientSpec, Credentials
from .credentials import credentials_for
from .entry import entry_of
from .errors import NOT_CONFIGURED, AwsMlError, invalid_argument, null_argument
from .services import S3
from .settings import Settings
from .transfer_process import Transfer

_plans: Dict[str, Any] = {}
FEATURE_NOT_SUPPORTED = "0A000"

Composite = Optional[Dict[str, Optional[str]]]  # a value of a composite type (aws_commons'), from SQL


def _execute(sql: str, types: List[str], values: List[Any]) -> Any:
    import plpy
    if sql not in _plans:
        _plans[sql] = plpy.prepare(sql, types)
    return plpy.execute(_plans[sql], values)


def _location(s3_info: Composite) -> Tuple[str, str, Optional[str]]:
    """(bucket, key, region or None) of an aws_commons._s3_uri_1."""
    if s3_info is None:
        raise null_argument("s3_info")
    region = s3_info["region"]
    if region is not None and not settings.REGION.fullmatch(region):
        raise invalid_argument(f"region {region!r} is not the name of an AWS Region",
                               hint="Give one such as us-east-1, or NULL for aws_ml.region.")
    return required("bucket", s3_info["bucket"]), required("file_path", s3_info["file_path"]), region


def _given_credentials(credentials: Composite) -> Optional[Credentials]:
    """An aws_commons._aws_credentials_1 as botocore's credentials, or None
    when the call gives none: NULL or empty key and secret. An empty session
    token is no token, as AWS's guide passes it."""
    if credentials is None:
        return None
    key, secret, token = credentials["access_key"], credentials["secret_key"], credentials["session_token"] or None
    if not (key or secret or token):
        return None
    if not (key and secret):
        raise invalid_argument("credentials need both an access_key and a secret_key",
                               hint="Pass all of them, or none to use the server's.")
    if not all(_is_token_text(value) for value in (key, secret, token) if value is not None):
        # never echoed: they are secrets
        raise invalid_argument("credentials must be printable ASCII without spaces, as AWS issues them")
    return {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token}


def _is_token_text(value: str) -> bool:
    return value != "" and all("!" <= character <= "~" for character in value)


def _internal(sql: str, types: List[str], values: List[Any]) -> Any:
    """The first row of sql, which calls an internal function of aws_s3's
    newest version: one the database's aws_s3 lacks (1.0's _copy_layout(text),
    1.1's missing _import_target, 1.2's _import_target(text)) means it
    predates this package."""
    import plpy
    try:
        return _execute(sql, types, values)[0]
    except plpy.spiexceptions.UndefinedFunction:
        raise AwsMlError(NOT_CONFIGURED, "this database's aws_s3 is older than the aws_s3 installed on the server",
                         hint="ALTER EXTENSION aws_s3 UPDATE (docs/operations.md#upgrading).") from None


def _layout(options: Optional[str], is_from: bool) -> Dict[str, Any]:
    """COPY's data format with options ({format, quote, escape, header, ascii_safe}),
    checked as COPY FROM (is_from) or TO checks them: before any request."""
    return _internal("SELECT format, quote, escape, header, ascii_safe FROM aws_s3._copy_layout($1, $2)",
                     ["pg_catalog.text", "pg_catalog.bool"], [options, is_from])


def _import_target(table_name: str, column_list: Optional[str], options: Optional[str]) -> int:
    """The OID of the table the import's COPY writes; raises the error that
    COPY raises before it checks that the transaction can write (a syntax
    error, no such table, schema or column, a privilege, row security), as
    COPY FROM STDIN raises it."""
    return _internal("SELECT aws_s3._import_target($1, $2, $3) AS relid", ["pg_catalog.text"] * 3,
                     [table_name, column_list, options])["relid"]


def _client(region: Optional[str], given: Optional[Credentials] = None) -> Tuple[Settings, ClientSpec]:
    """The settings, and what the transfer process makes its S3 client from:
    the settings' values and the credentials (the call's, else the role's;
    None: the server's own, which that process finds as the backend does)."""
    current = settings.current()
    region = region or current.resolved_region()
    credentials = credentials_for(S3, current, region, given)
    if credentials:
        credentials = {name: credentials[name] for name in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    return current, {**clients.client_spec(S3, current, region), "credentials": credentials}


def _copy_through(transfer: Transfer, sql: str, types: List[str], values: List[Any]) -> Tuple[int, Dict[str, Any]]:
    """The rows of the COPY sql, run with values, then the transfer's
    result. If either fails, the transfer is given up and the error raised
    is the transfer's own if it had one (COPY then failed because the pipe
    closed), PostgreSQL's if the statement was cancelled, else COPY's."""
    try:
        rows = _execute(sql, types, values)[0]["rows"]
        return rows, transfer.finish()
    except BaseException:
        failure = transfer.give_up()
        if failure is not None:
            raise failure from None
        wait.check_for_interrupts()
        raise


@entry_of("aws_s3")
def query_export_to_s3(query: Optional[str], s3_info: Composite, options: Optional[str],
                       kms_key: Optional[str]) -> Tuple[int, int, int]:
    """(rows_uploaded, files_uploaded, bytes_uploaded) of COPY (query) TO
    s3_info's object with options; SSE-KMS with kms_key."""
    required("query", query)
    bucket, key, region = _location(s3_info)
    layout = _layout(options, False)
    current, client = _client(region)
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    pipe, token = backend.transfer_pipe(export=True)
    transfer = transfer_process.start("export", pipe, client=client, bucket=bucket, file_path=key,
                                      encryption=encryption, max_file_size=current.s3_max_file_size_kb * 1024,
                                      layout=layout)
    rows, result = _copy_through(transfer, "SELECT aws_s3._copy_query_to_pipe($1, $2, $3) AS rows",
                                 ["pg_catalog.text", "pg_catalog.text", "pg_catalog.int8"], [query, options, token])
    return rows, result["files"], result["bytes"]


@entry_of("aws_s3")
def table_import_from_s3(table_name: Optional[str], column_list: Optional[str], options: Optional[str],
                         s3_info: Composite, credentials: Composite) -> str:
    """COPY table_name (column_list) FROM s3_info's object with options; AWS's
    summary of it."""
    table_name = required("table_name", table_name)
    if distributed.managed_by_citus(table_name):
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"cannot import into {table_name}, a Citus table: its COPY runs "
                         "inside the server, where Citus does not see it, and would write only this node's own "
                         "relation",
                         hint="Import into a plain table, then INSERT INTO the Citus table SELECT from it "
                              "(docs/scaling.md).")
    bucket, key, region = _location(s3_info)
    # in COPY FROM's order: the statement's syntax and the table, whether the transaction may write it, the
    # options' values
    read_only.refuse_writes([_import_target(table_name, column_list, options)],
                            f"table_import_from_s3 cannot import s3://{bucket}/{key} into {table_name}", "Import it")
    _layout(options, True)
    _, client = _client(region, _given_credentials(credentials))
    pipe, token = backend.transfer_pipe(export=False)
    transfer = transfer_process.start("import", pipe, client=client, bucket=bucket, key=key)
    rows, result = _copy_through(transfer, "SELECT aws_s3._copy_pipe_to_table($1, $2, $3, $4) AS rows",
                                 ["pg_catalog.text"] * 3 + ["pg_catalog.int8"],
                                 [table_name, column_list, options, token])
    return f'{rows} rows imported into relation "{table_name}" from file {key} of {result["size"]} bytes'
