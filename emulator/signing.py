"""Who signed a request and for which service, from its SigV4 credential scope
(Credential=AKID/date/region/service/aws4_request). The signature itself is
not checked: the emulator trusts any key."""
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

_SCOPE = r"([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request"
_AUTHORIZATION = re.compile("Credential=" + _SCOPE)
_PRESIGNED = re.compile(_SCOPE)


@dataclass(frozen=True)
class Signer:
    access_key_id: str
    region: str
    service: str


UNSIGNED = Signer(access_key_id="", region="us-east-1", service="unsigned")


def signer_of(environ):
    """The Authorization header's credential scope, or the presigned URL's
    X-Amz-Credential query parameter; UNSIGNED when neither is there."""
    match = _AUTHORIZATION.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        presigned = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
        match = _PRESIGNED.fullmatch(presigned)
    if match is None:
        return UNSIGNED
    access_key_id, region, service = match.groups()
    return Signer(access_key_id=access_key_id, region=region, service=service)
