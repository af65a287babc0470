"""Errors as PostgreSQL reports them: a SQLSTATE a client can branch on, a
message naming the service and operation, the AWS error code in DETAIL and a
HINT when there is something to do (docs/design.md, decision 5)."""
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # errors.py stays a leaf of the package's imports
    from .services import Service

INVALID_PARAMETER = "22023"
NULL_VALUE = "22004"
NOT_CONFIGURED = "55000"
PERMISSION_DENIED = "42501"
UNDEFINED_OBJECT = "42704"
THROTTLED = "53400"
NETWORK_FAILURE = "58030"
SERVICE_FAILED = "38000"
OUT_OF_MEMORY = "53200"

_THROTTLING_CODES = frozenset((
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException",
    "ServiceQuotaExceededException", "LimitExceededException",
))

_SQLSTATE_BY_AWS_CODE = {
    **dict.fromkeys((
        "ValidationException", "ValidationError", "InvalidRequestException",
        "TextSizeLimitExceededException", "BatchSizeLimitExceededException",
        "UnsupportedLanguageException", "SerializationException",
        # BatchDetectSentiment's per-document ErrorList codes
        "TEXT_SIZE_LIMIT_EXCEEDED", "INVALID_REQUEST",
    ), INVALID_PARAMETER),
    **dict.fromkeys((
        "AccessDenied", "AccessDeniedException", "UnrecognizedClientException",
        "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch",
        "ExpiredToken", "ExpiredTokenException", "MissingAuthenticationTokenException",
        "InvalidAccessKeyId",
    ), PERMISSION_DENIED),
    **dict.fromkeys(("ResourceNotFoundException", "NoSuchBucket", "NoSuchKey"), UNDEFINED_OBJECT),
    "ModelTimeoutException": THROTTLED,
    **dict.fromkeys(_THROTTLING_CODES, THROTTLED),
}

# The services report an unknown SageMaker endpoint or Bedrock model as a
# validation error; to a SQL caller it is an unknown object.
_NOT_FOUND_MESSAGE = re.compile(r"Endpoint .* not found|model identifier is invalid", re.IGNORECASE)

# AWS explains a signature it computed otherwise with the canonical request
# and the string to sign it expected: signed headers, the session token among
# them. Neither part is for a SQL client.
_SIGNING_DETAILS = re.compile(r"\s*The (Canonical String|String-to-Sign) .*", re.DOTALL)

# What to do about an error code whose SQLSTATE's hint does not fit it.
_HINTS_BY_CODE = {
    "NoSuchBucket": "Check the bucket's name, and that it is in the region given (else aws_ml.region).",
    "NoSuchKey": "Check file_path: S3 keys are case-sensitive and have no leading slash.",
    "ModelNotReadyException": "The model is still being loaded (a serverless or multi-model endpoint, or a "
                              "Bedrock model): try again in a moment.",
    **dict.fromkeys(("TextSizeLimitExceededException", "TEXT_SIZE_LIMIT_EXCEEDED"),
                    "Shorten the text to the limit the message gives, in bytes of UTF-8: left(text, 1250) is "
                    "at most 5,000 bytes whatever its characters."),
    "UnsupportedLanguageException": "Give a language code the operation supports (the message lists them).",
}

# A validation error about the language code: it lists the codes allowed.
_LANGUAGE_CODE_MESSAGE = re.compile(r"\blanguageCode\b", re.IGNORECASE)
_LANGUAGE_CODE_HINT = "Give one of the language codes the message lists."

_HINTS = {
    THROTTLED: "AWS kept throttling after aws_ml.max_attempts attempts: lower the request rate, "
               "raise aws_ml.max_attempts, or ask AWS for a higher quota.",
    NETWORK_FAILURE: "Check that the service endpoint (aws_ml.endpoint_url or the service's own "
                     "setting) is reachable from the server; aws_ml.request_timeout_ms bounds one request.",
    SERVICE_FAILED: "The service or the model failed; the DETAIL has its error code.",
}


# Errors about a call's own arguments or input: another row's call may succeed.
_INPUT_SQLSTATES = frozenset((INVALID_PARAMETER, NULL_VALUE, UNDEFINED_OBJECT))


class AwsMlError(Exception):
    """An error for SQL; raised anywhere in the package, reported by sql_entry.
    ordinality: the element of a batch it is about (1-based), if one;
    request_rows: when a request of several elements failed as a whole,
    their ordinalities, in order; about_input: whether the input (rather than
    the service, the network or the configuration) caused it."""

    def __init__(self, sqlstate: str, message: str, detail: Optional[str] = None, hint: Optional[str] = None,
                 ordinality: Optional[int] = None, request_rows: Optional[List[int]] = None,
                 about_input: Optional[bool] = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.ordinality = ordinality
        self.request_rows = request_rows
        self.about_input = sqlstate in _INPUT_SQLSTATES if about_input is None else about_input

    def full_message(self) -> str:
        """The message, naming the input it is about (a failure of the service
        or the network is about no input of the batch)."""
        if self.ordinality is None or not self.about_input:
            return self.message
        return f"{self.message} (the input at ordinality {self.ordinality})"


def unpacked_sqlstate(code: int) -> str:
    """The SQLSTATE of an error code as the server packs it (MAKE_SQLSTATE)."""
    return "".join(chr(((code >> (6 * i)) & 0x3F) + ord("0")) for i in range(5))


def packed_sqlstate(sqlstate: str) -> int:
    return sum(((ord(character) - ord("0")) & 0x3F) << (6 * i) for i, character in enumerate(sqlstate))


# plpy.SPIError's spidata, as PL/Python fills and reads it
SPIDATA_FIELDS = ("sqlerrcode", "detail", "hint", "internal_query", "internal_position", "schema_name",
                  "table_name", "column_name", "datatype_name", "constraint_name")


def spidata_of(error: Exception) -> Dict[str, Any]:
    """The fields of a plpy.SPIError's spidata by name; none if it has no spidata."""
    return dict(zip(SPIDATA_FIELDS, getattr(error, "spidata", None) or ()))


def as_spidata(fields: Dict[str, Any]) -> Tuple[Any, ...]:
    """The spidata of fields (by name; the SQLSTATE packed); PL/Python reads
    the position as a number."""
    return tuple(fields.get(name, 0 if name == "internal_position" else None) for name in SPIDATA_FIELDS)


_spi_exceptions: Optional[Dict[str, type]] = None  # SQLSTATE -> plpy.spiexceptions' class


def server_error(sqlstate: str, message: str, detail: Optional[str] = None) -> Exception:
    """The plpy.SPIError PL/Python raises for a server error of sqlstate."""
    global _spi_exceptions
    import plpy
    if _spi_exceptions is None:
        _spi_exceptions = {getattr(kind, "sqlstate"): kind for kind in vars(plpy.spiexceptions).values()
                           if isinstance(kind, type) and getattr(kind, "sqlstate", None)}
    error = _spi_exceptions.get(sqlstate, plpy.SPIError)(message)
    error.sqlstate = sqlstate
    if detail is not None:
        error.spidata = as_spidata({"sqlerrcode": packed_sqlstate(sqlstate), "detail": detail})
    return error


def at_ordinality(error: AwsMlError, ordinality: int, request_rows: Optional[List[int]] = None) -> AwsMlError:
    """error, raised for the element at ordinality of a batch function's array
    (request_rows: the elements of the request that failed as a whole)."""
    return AwsMlError(error.sqlstate, error.message, error.detail, error.hint, ordinality, request_rows,
                      error.about_input)


def null_argument(name: str) -> AwsMlError:
    return AwsMlError(NULL_VALUE, f"{name} must not be NULL")


def invalid_argument(message: str, hint: Optional[str] = None) -> AwsMlError:
    return AwsMlError(INVALID_PARAMETER, message, hint=hint)


def from_botocore(service: "Service", operation: str, error: Exception, secrets: Sequence[Optional[str]]) -> AwsMlError:
    """The AwsMlError for an exception botocore raised while calling service;
    secrets: the credentials' values, never to appear in its text."""
    from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError
    if isinstance(error, ClientError):
        return from_client_error(service, operation, error, secrets)
    if isinstance(error, NoCredentialsError):
        return no_credentials(service, operation)
    if isinstance(error, ParamValidationError):  # refused by botocore before sending, e.g. an empty model_id
        return AwsMlError(INVALID_PARAMETER, f"{service.display} {operation} failed: {error}",
                          "botocore error: ParamValidationError")
    return from_transport_error(service, operation, error, secrets)


def without_secrets(text: str, secrets: Sequence[Optional[str]]) -> str:
    """text without AWS's signing details and without any of secrets."""
    text = _SIGNING_DETAILS.sub("", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text


def is_throttling(code: Optional[str], status: Optional[int]) -> bool:
    return code in _THROTTLING_CODES or status == 429


def hint_for(code: str, message: str) -> Optional[str]:
    """What to do about an error of code, if its code or message tells."""
    if code == "ValidationException" and _LANGUAGE_CODE_MESSAGE.search(message):
        return _LANGUAGE_CODE_HINT
    return _HINTS_BY_CODE.get(code)


def sqlstate_for(code: str, message: str, status: Optional[int] = None) -> str:
    sqlstate = _SQLSTATE_BY_AWS_CODE.get(code)
    if sqlstate == INVALID_PARAMETER and _NOT_FOUND_MESSAGE.search(message):
        return UNDEFINED_OBJECT
    if sqlstate is None:
        return THROTTLED if status == 429 else SERVICE_FAILED
    return sqlstate


def from_client_error(service: "Service", operation: str, error: Any, secrets: Sequence[Optional[str]]) -> AwsMlError:
    """An error answer of an AWS service (botocore's ClientError)."""
    info = error.response.get("Error", {})
    code = info.get("Code") or "Unknown"
    message = without_secrets(info.get("Message") or str(error), secrets)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    sqlstate = sqlstate_for(code, message, status)
    hint = service.access_hint if sqlstate == PERMISSION_DENIED else hint_for(code, message) or _HINTS.get(sqlstate)
    detail = f"AWS error code: {code}" + (f" (HTTP {status})" if status else "")
    if error.response.get("OriginalMessage"):  # a SageMaker ModelError: the model container's own words
        detail += f"; the model said: {without_secrets(error.response['OriginalMessage'], secrets)}"
    return AwsMlError(sqlstate, f"{service.display} {operation} failed: {message}", detail, hint,
                      about_input=True if code == "ModelError" else None)


def from_transport_error(service: "Service", operation: str, error: Exception,
                         secrets: Sequence[Optional[str]]) -> AwsMlError:
    """A request that got no answer: connection refused or dropped, or a timeout."""
    return AwsMlError(NETWORK_FAILURE, f"{service.display} {operation} failed: {without_secrets(str(error), secrets)}",
                      f"botocore error: {type(error).__name__}", _HINTS[NETWORK_FAILURE])


def no_credentials(service: "Service", operation: str) -> AwsMlError:
    return AwsMlError(
        NOT_CONFIGURED, f"{service.display} {operation} failed: no AWS credentials for the server",
        "botocore error: NoCredentialsError",
        "Give the PostgreSQL server process credentials through the standard AWS chain: "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment, the postgres OS user's "
        "~/.aws/credentials, or an instance or container role.")
