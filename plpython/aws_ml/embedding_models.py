"""The Bedrock embedding model families materialize_embeddings can build
requests for: the request body for some texts, and the texts' vectors in the
JSON answer."""
import json
import re
from dataclasses import dataclass
from typing import Callable, List, Optional

from . import json_path
from .errors import invalid_argument
from .json_path import Json


@dataclass(frozen=True)
class Family:
    prefix: str             # model ids of the family start with it
    texts_per_request: int
    json_key: str           # where the vector(s) are in the answer, by default
    body: Callable[[List[str]], str]  # texts -> request body (JSON text)
    vectors: Callable[[Json, str, int], List[List[float]]]  # (answer document, json_key, number of texts) -> vectors
    first_vector: Callable[[str], str]  # request body (text) -> the json_key of the answer's first vector


def _titan_vectors(document: Json, json_key: str, count: int) -> List[List[float]]:
    return [json_path.vector(document, json_key)]


def _cohere_vectors(document: Json, json_key: str, count: int) -> List[List[float]]:
    return [json_path.vector(document, f"{json_key}.{index}") for index in range(count)]


def _cohere_first_vector(model_input: str) -> str:
    try:
        body = json.loads(model_input)
    except ValueError:
        body = None  # Bedrock refuses it: no key is needed
    # with embedding_types, the vectors are grouped by type
    return "embeddings.float.0" if isinstance(body, dict) and "embedding_types" in body else "embeddings.0"


FAMILIES = (
    Family("amazon.titan-embed", 1, "embedding",
           lambda texts: json.dumps({"inputText": texts[0]}), _titan_vectors, lambda body: "embedding"),
    Family("cohere.embed", 96, "embeddings",
           lambda texts: json.dumps({"texts": texts, "input_type": "search_document"}), _cohere_vectors,
           _cohere_first_vector),
)


# An inference profile's id puts a geography before the model's
# (us.amazon.titan-...); an ARN names a foundation model or an inference
# profile after its last "/".
_GEOGRAPHY = re.compile(r"^(?:us|us-gov|eu|apac|ca|jp|au|global)\.(?=[a-z0-9-]+\.)")


def base_model_id(model_id: str) -> str:
    """The id of the foundation model a model id, inference profile id or ARN names."""
    if model_id.startswith("arn:"):
        model_id = model_id.rsplit("/", 1)[-1]
    return _GEOGRAPHY.sub("", model_id, count=1)


def _known_family(model_id: str) -> Optional[Family]:
    """The Family of model_id, or None."""
    base = base_model_id(model_id)
    return next((candidate for candidate in FAMILIES if base.startswith(candidate.prefix)), None)


def family(model_id: str) -> Family:
    found = _known_family(model_id)
    if found is None:
        known = ", ".join(f"{candidate.prefix}*" for candidate in FAMILIES)
        raise invalid_argument(f"materialize_embeddings cannot build requests for model {model_id}",
                               hint=f"Models it knows: {known}. For another model, call "
                                    "aws_bedrock.batch_invoke_model_get_embeddings with your own request bodies.")
    return found


def first_vector_json_key(model_id: str, model_input: str) -> str:
    """The json_key of the first vector in the answer of model_id to
    model_input, for a call that gives none."""
    found = _known_family(model_id)
    if found is None:
        raise invalid_argument(f"json_key is NULL and aws_ml does not know where model {model_id} puts its vector",
                               hint="Pass json_key: the dotted path of the vector in the model's JSON answer, "
                                    "such as 'embedding' (Titan) or 'embeddings.0' (Cohere).")
    return found.first_vector(model_input)
