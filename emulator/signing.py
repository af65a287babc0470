"""Who signed a request and for which service, from its SigV4 credential scope
(Credential=AKID/date/region/service/aws4_request). The signature itself is
not checked: the emulator trusts any key. An injected signature error says
what AWS says: the canonical request and string to sign it expected, signed
headers (the session token among them) included."""
import hashlib
import re
from urllib.parse import quote
from dataclasses import dataclass
from urllib.parse import parse_qs

_SCOPE = r"([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request"
_AUTHORIZATION = re.compile("Credential=" + _SCOPE)
_PRESIGNED = re.compile(_SCOPE)
_SIGNED_HEADERS = re.compile(r"SignedHeaders=([^,\s]+)")
_FULL_SCOPE = re.compile(r"Credential=[^/]+/([^,\s]+)")
SIGNATURE_ERROR_CODES = frozenset(("SignatureDoesNotMatch", "InvalidSignatureException"))


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


def signature_mismatch_message(request):
    """AWS's message for a signature it did not compute the same way."""
    authorization = request.headers.get("Authorization", "")
    names = _SIGNED_HEADERS.search(authorization)
    names = names.group(1).split(";") if names else []
    headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in names)
    query = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                            for k, v in request.args.items(multi=True)))
    payload = request.headers.get("X-Amz-Content-SHA256") or hashlib.sha256(request.get_data()).hexdigest()
    canonical = "\n".join((request.method, quote(request.path), query, headers, ";".join(names), payload))
    scope = _FULL_SCOPE.search(authorization)
    to_sign = "\n".join(("AWS4-HMAC-SHA256", request.headers.get("X-Amz-Date", ""),
                          scope.group(1) if scope else "", hashlib.sha256(canonical.encode()).hexdigest()))
    return ("The request signature we calculated does not match the signature you provided. Check your "
            "AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{to_sign}'\n")
