"""The Bedrock embedding models the emulator answers: Titan Text Embeddings
G1 and V2, Titan Multimodal Embeddings G1, Cohere Embed. Each function takes
the parsed request body and returns (answer, items)."""
import base64
import binascii
import hashlib
import json

from . import bedrock_input as given
from .bedrock_input import MalformedInput
from .embeddings import embed, words

TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V2_MAX_CHARACTERS = 50_000
TITAN_V2_EMBEDDING_TYPES = ("float", "binary")
TITAN_IMAGE_DIMENSIONS = (256, 384, 1024)
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_MAX_TEXTS = 96
COHERE_MAX_CHARACTERS = 2048


def titan_g1(body):
    given.require(body, "inputText")
    given.only(body, "inputText")
    text = given.text(body, "inputText")
    return {"embedding": embed(text, 1536), "inputTextTokenCount": len(words(text))}, 1


def titan_v2(body):
    given.require(body, "inputText")
    given.only(body, "inputText", "dimensions", "normalize", "embeddingTypes")
    text = given.text(body, "inputText", TITAN_V2_MAX_CHARACTERS)
    dimensions = body.get("dimensions", 1024)
    if dimensions not in TITAN_V2_DIMENSIONS or isinstance(dimensions, bool):
        raise MalformedInput(f"#/dimensions: {dimensions} is not a valid enum value")
    given.boolean(body, "normalize")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in TITAN_V2_EMBEDDING_TYPES for t in types):
        raise MalformedInput(f"#/embeddingTypes: {types} is not a valid list of {list(TITAN_V2_EMBEDDING_TYPES)}")
    vector = embed(text, dimensions, body.get("normalize", True))
    by_type = {"float": vector, "binary": [1 if value > 0 else 0 for value in vector]}
    answer = {"embeddingsByType": {t: by_type[t] for t in types}, "inputTextTokenCount": len(words(text))}
    if "float" in types:
        answer["embedding"] = vector
    return answer, 1


def titan_multimodal(body):
    """A text, an image (base64), or both, in one vector."""
    given.only(body, "inputText", "inputImage", "embeddingConfig")
    if "inputText" not in body and "inputImage" not in body:
        raise MalformedInput("#: required key [inputText] or [inputImage] not found")
    text = given.text(body, "inputText") if "inputText" in body else ""
    features = text
    if "inputImage" in body:
        try:
            image = base64.b64decode(given.text(body, "inputImage"), validate=True)
        except binascii.Error:
            raise MalformedInput("#/inputImage: expected a base64-encoded image") from None
        features += " image-" + hashlib.blake2b(image, digest_size=8).hexdigest()
    config = given.obj(body, "embeddingConfig")
    given.only(config, "outputEmbeddingLength", where="#/embeddingConfig")
    dimensions = given.one_of(config, "outputEmbeddingLength", TITAN_IMAGE_DIMENSIONS, 1024, "#/embeddingConfig")
    return {"embedding": embed(features, dimensions), "inputTextTokenCount": len(words(text))}, 1


def cohere_embed(body):
    given.require(body, "texts", "input_type")
    texts = given.strings(body, "texts", COHERE_MAX_TEXTS)
    for index, text in enumerate(texts):
        if len(text) > COHERE_MAX_CHARACTERS:
            raise MalformedInput(f"#/texts/{index}: expected maxLength: {COHERE_MAX_CHARACTERS}, actual: {len(text)}")
    given.one_of(body, "input_type", COHERE_INPUT_TYPES)
    digest = hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=16).hexdigest()
    vectors = [embed(text, 1024) for text in texts]
    answer = {"id": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}", "texts": texts}
    if "embedding_types" in body:
        # only float is emulated; the other types AWS names are refused
        if body["embedding_types"] != ["float"]:
            raise MalformedInput(f"#/embedding_types: {body['embedding_types']} is not supported by the emulator")
        answer.update(embeddings={"float": vectors}, response_type="embeddings_by_type")
    else:
        answer.update(embeddings=vectors, response_type="embeddings_floats")
    return answer, len(texts)
