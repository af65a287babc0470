"""Requests and answers in the AWS wire protocols the emulated services speak."""
import json
import uuid
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

ACCOUNT_ID = "123456789012"


def _request_id():
    return str(uuid.uuid4())


def raw_path(request):
    """The request path as sent, still percent-encoded: an encoded '/' in an
    endpoint or model name must not split it."""
    uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return uri.split("?", 1)[0]


def json_answer(payload, status=200, content_type="application/json", headers=None):
    response = Response(json.dumps(payload), status=status, content_type=content_type)
    response.headers["x-amzn-RequestId"] = _request_id()
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_rpc_error(code, message, status=400):
    """An error of the JSON 1.1 protocol (Comprehend): the code in __type."""
    return json_answer(
        {"__type": code, "Message": message}, status, "application/x-amz-json-1.1"
    )


def rest_json_error(code, status, body):
    """An error of the REST JSON protocol (SageMaker and Bedrock runtimes): the
    code in the x-amzn-ErrorType header, the details in the body."""
    return json_answer(body, status, headers={"x-amzn-ErrorType": code})


def query_error(code, message, status=400):
    """An error of the query protocol (STS, IAM), which botocore also reads for
    the other XML services."""
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
    )
    return Response(body, status=status, content_type="text/xml")


def text_answer(text, status=200, content_type="text/plain"):
    response = Response(text, status=status, content_type=content_type)
    response.headers["x-amzn-RequestId"] = _request_id()
    return response
