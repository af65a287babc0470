"""The Bedrock embedding model families materialize_embeddings can build
requests for: the request body for some texts, and the texts' vectors in the
JSON answer."""
import json
from collections.abc import Callable
from dataclasses import dataclass

from . import json_path
from .errors import invalid_argument


@dataclass(frozen=True)
class Family:
    prefix: str             # model ids of the family start with it
    texts_per_request: int
    json_key: str           # where the vector(s) are in the answer, by default
    body: Callable          # texts -> request body (JSON text)
    vectors: Callable       # (answer document, json_key, number of texts) -> vectors


def _titan_vectors(document, json_key, count):
    return [json_path.vector(document, json_key)]


def _cohere_vectors(document, json_key, count):
    return [json_path.vector(document, f"{json_key}.{index}") for index in range(count)]


FAMILIES = (
    Family("amazon.titan-embed", 1, "embedding",
           lambda texts: json.dumps({"inputText": texts[0]}), _titan_vectors),
    Family("cohere.embed", 96, "embeddings",
           lambda texts: json.dumps({"texts": texts, "input_type": "search_document"}), _cohere_vectors),
)


def family(model_id):
    for candidate in FAMILIES:
        if model_id.startswith(candidate.prefix):
            return candidate
    known = ", ".join(f"{candidate.prefix}*" for candidate in FAMILIES)
    raise invalid_argument(f"materialize_embeddings cannot build requests for model {model_id}",
                           hint=f"Models it knows: {known}. For another model, call "
                                "aws_bedrock.batch_invoke_model_get_embeddings with your own request bodies.")
