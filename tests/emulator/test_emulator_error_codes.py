"""Every AWS error code the emulator answers with is one the operation
declares in botocore's service model (botocore is pinned), or one of the
errors AWS documents as common to all services."""
import gzip
import json
import re
from pathlib import Path

import botocore
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# https://docs.aws.amazon.com/ (Common Errors), with the JSON protocols' names for them
COMMON = {"AccessDeniedException", "IncompleteSignature", "InternalFailure", "InvalidAction",
          "InvalidClientTokenId", "NotAuthorized", "OptInRequired", "RequestExpired", "ServiceUnavailable",
          "ThrottlingException", "ValidationError", "ValidationException", "SerializationException",
          "UnrecognizedClientException",
          "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException"}
EMULATED = {  # emulator module: (botocore service, its operations the module answers)
    "comprehend": ("comprehend", ("DetectSentiment", "BatchDetectSentiment")),
    "sagemaker": ("sagemaker-runtime", ("InvokeEndpoint",)),
    "bedrock": ("bedrock-runtime", ("InvokeModel",)),
}
_CODE = re.compile(r'"([A-Z][A-Za-z]+(?:Exception|Error|Failure|Unavailable))"')


def declared_errors(service, operations):
    data_dir = Path(botocore.__file__).parent / "data" / service
    model_file = sorted(data_dir.glob("*/service-2.json*"))[-1]
    opener = gzip.open if model_file.suffix == ".gz" else open
    with opener(model_file, "rt") as model:
        model = json.load(model)
    return {error["shape"] for operation in operations for error in model["operations"][operation].get("errors", [])}


@pytest.mark.parametrize("module", EMULATED)
def test_the_emulators_error_codes_are_the_operations(module):
    service, operations = EMULATED[module]
    answered = set(_CODE.findall((ROOT / "emulator" / f"{module}.py").read_text()))
    assert answered, f"emulator/{module}.py names no error code"
    assert answered - declared_errors(service, operations) - COMMON == set()
