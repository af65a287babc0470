"""The Bedrock runtime through boto3: every text and embedding model family
of Bedrock's model-parameter reference, errors."""
import json
import math

import pytest
from botocore.exceptions import ClientError

from tests.bedrock_examples import ANSWER, CONTEXT_PROMPT, EMBEDDING_MODELS, TEXT_MODELS, answer_keys, model_id_forms


@pytest.fixture
def bedrock(client):
    return client("bedrock-runtime")


def invoke(bedrock, model_id, body, **extra):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    answer = bedrock.invoke_model(modelId=model_id, body=raw, contentType="application/json", **extra)
    assert answer["contentType"] == "application/json"
    return json.loads(answer["body"].read())


def refused(bedrock, model_id, body, **extra):
    with pytest.raises(ClientError) as error:
        invoke(bedrock, model_id, body, **extra)
    return error.value.response


def norm(vector):
    return math.sqrt(sum(v * v for v in vector))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def test_titan_v1(bedrock):
    answer = invoke(bedrock, "amazon.titan-embed-text-v1", {"inputText": "the cat sat on the mat"})
    assert len(answer["embedding"]) == 1536
    assert norm(answer["embedding"]) == pytest.approx(1.0)
    assert answer["inputTextTokenCount"] == 6


@pytest.mark.parametrize("dimensions", [256, 512, 1024, None])
def test_titan_v2_dimensions(bedrock, dimensions):
    body = {"inputText": "hello world"} if dimensions is None else {"inputText": "hello world", "dimensions": dimensions}
    answer = invoke(bedrock, "amazon.titan-embed-text-v2:0", body)
    assert len(answer["embedding"]) == (dimensions or 1024)
    assert answer["embeddingsByType"]["float"] == answer["embedding"]
    assert norm(answer["embedding"]) == pytest.approx(1.0)


def test_titan_v2_normalize_false_keeps_the_raw_vector(bedrock):
    raw = invoke(bedrock, "amazon.titan-embed-text-v2:0", {"inputText": "hello hello world", "normalize": False})
    unit = invoke(bedrock, "amazon.titan-embed-text-v2:0", {"inputText": "hello hello world"})
    assert norm(raw["embedding"]) > 1.5
    assert cosine(raw["embedding"], unit["embedding"]) == pytest.approx(1.0)


def test_embeddings_carry_lexical_similarity_and_are_deterministic(bedrock):
    def embedding(text):
        return invoke(bedrock, "amazon.titan-embed-text-v1", {"inputText": text})["embedding"]

    cat, similar, unrelated = (
        embedding(t) for t in ("the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew")
    )
    assert cosine(cat, similar) > cosine(cat, unrelated) + 0.3
    assert embedding("the cat sat on the mat") == cat


def test_cohere_embed(bedrock, emulator):
    texts = ["first text", "second text", "third"]
    answer = invoke(bedrock, "cohere.embed-english-v3", {"texts": texts, "input_type": "search_document"})
    assert answer["texts"] == texts
    assert answer["response_type"] == "embeddings_floats"
    assert [len(e) for e in answer["embeddings"]] == [1024] * 3
    assert answer["id"]
    counted = emulator.counters()["bedrock"]["InvokeModel"]
    assert (counted["requests"], counted["items"]) == (1, 3)




def test_claude_text_completion_answers_from_the_context(bedrock):
    answer = invoke(
        bedrock, "anthropic.claude-v2",
        {"prompt": f"\n\nHuman: {CONTEXT_PROMPT}\n\nAssistant:", "max_tokens_to_sample": 200},
    )
    assert answer["completion"].strip() == "Returns are accepted within 30 days of purchase."
    assert (answer["stop_reason"], answer["stop"]) == ("stop_sequence", "\n\nHuman:")


def test_claude_messages_with_string_and_block_content(bedrock):
    for content in (CONTEXT_PROMPT, [{"type": "text", "text": CONTEXT_PROMPT}]):
        answer = invoke(
            bedrock, "anthropic.claude-v2",
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
             "messages": [{"role": "user", "content": content}]},
        )
        assert (answer["type"], answer["role"], answer["stop_reason"]) == ("message", "assistant", "end_turn")
        assert answer["content"] == [{"type": "text", "text": "Returns are accepted within 30 days of purchase."}]
        assert answer["usage"]["output_tokens"] == 8


def test_claude_summarises_a_prompt_without_context_and_stops_at_max_tokens(bedrock):
    text = (
        "Databases store data. Postgres is a database that stores data in tables. "
        "The weather was nice. Extensions let Postgres call models that read data."
    )
    summary = invoke(
        bedrock, "anthropic.claude-v2",
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 500, "messages": [{"role": "user", "content": text}]},
    )["content"][0]["text"]
    assert summary == "Databases store data. Postgres is a database that stores data in tables."
    cut = invoke(
        bedrock, "anthropic.claude-v2",
        {"prompt": f"\n\nHuman: {text}\n\nAssistant:", "max_tokens_to_sample": 3},
    )
    assert (len(cut["completion"].split()), cut["stop_reason"]) == (3, "max_tokens")


def test_a_foundation_model_arn_names_the_model(bedrock):
    arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v1"
    assert len(invoke(bedrock, arn, {"inputText": "hello"})["embedding"]) == 1536


def test_unknown_model(bedrock):
    answer = refused(bedrock, "amazon.no-such-model", {"inputText": "hello"})
    assert answer["Error"] == {"Code": "ValidationException", "Message": "The provided model identifier is invalid."}
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "model_id, body, named",
    [
        ("amazon.titan-embed-text-v1", "{not json", "Malformed input request"),
        ("amazon.titan-embed-text-v1", {"text": "hello"}, "required key [inputText]"),
        ("amazon.titan-embed-text-v1", {"inputText": ""}, "minLength"),
        ("amazon.titan-embed-text-v2:0", {"inputText": "hi", "dimensions": 100}, "dimensions"),
        ("cohere.embed-english-v3", {"texts": ["a"]}, "required key [input_type]"),
        ("amazon.titan-embed-text-v2:0", {"inputText": "x" * 50_001}, "expected maxLength: 50000, actual: 50001"),
        ("amazon.titan-embed-text-v2:0", {"inputText": "hi", "embeddingTypes": ["int8"]}, "embeddingTypes"),
        ("cohere.embed-english-v3", {"texts": ["ok", "y" * 2049], "input_type": "search_document"},
         "#/texts/1: expected maxLength: 2048, actual: 2049"),
        ("anthropic.claude-v2", {"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": -1},
         "max_tokens_to_sample"),
        ("anthropic.claude-v2", {"anthropic_version": "bedrock-2023-05-31", "messages": []}, "max_tokens"),
    ],
)
def test_a_body_wrong_for_the_model(bedrock, model_id, body, named):
    answer = refused(bedrock, model_id, body)
    assert answer["Error"]["Code"] == "ValidationException"
    assert answer["Error"]["Message"].startswith("Malformed input request: ")
    assert named in answer["Error"]["Message"]


def test_an_accept_other_than_json(bedrock):
    answer = refused(bedrock, "amazon.titan-embed-text-v1", {"inputText": "hello"}, accept="text/plain")
    assert answer["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("prompt, message", [
    ("Hello", 'Invalid prompt: prompt must start with "\n\nHuman:" turn'),
    ("\n\nHuman: Hello", 'Invalid prompt: prompt must end with "\n\nAssistant:" turn'),
])
def test_a_claude_prompt_without_its_turns_in_bedrocks_words(bedrock, prompt, message):
    answer = refused(bedrock, "anthropic.claude-v2", {"prompt": prompt, "max_tokens_to_sample": 10})
    assert answer["Error"] == {"Code": "ValidationException", "Message": message}


def test_claude_v2_completion_has_exactly_its_three_keys(bedrock):
    prompt = f"\n\nHuman: {CONTEXT_PROMPT}\n\nAssistant:"
    answer = invoke(bedrock, "anthropic.claude-v2", {"prompt": prompt, "max_tokens_to_sample": 200})
    assert set(answer) == {"completion", "stop_reason", "stop"}
    empty = invoke(bedrock, "anthropic.claude-v2", {"prompt": prompt, "max_tokens_to_sample": 0})
    assert empty == {"completion": "", "stop_reason": "max_tokens", "stop": None}


def test_titan_v2_embedding_types(bedrock):
    both = invoke(bedrock, "amazon.titan-embed-text-v2:0",
                  {"inputText": "hello", "dimensions": 256, "embeddingTypes": ["float", "binary"]})
    assert both["embedding"] == both["embeddingsByType"]["float"]
    assert both["embeddingsByType"]["binary"] == [1 if v > 0 else 0 for v in both["embedding"]]
    binary = invoke(bedrock, "amazon.titan-embed-text-v2:0", {"inputText": "hello", "embeddingTypes": ["binary"]})
    assert "embedding" not in binary and set(binary["embeddingsByType"]) == {"binary"}


def test_cohere_embeddings_by_type(bedrock):
    texts = ["first text", "second text"]
    plain = invoke(bedrock, "cohere.embed-english-v3", {"texts": texts, "input_type": "search_document"})
    by_type = invoke(bedrock, "cohere.embed-english-v3",
                     {"texts": texts, "input_type": "search_document", "embedding_types": ["float"]})
    assert by_type["response_type"] == "embeddings_by_type"
    assert by_type["embeddings"] == {"float": plain["embeddings"]}


@pytest.mark.parametrize("model_id, body, text_of", TEXT_MODELS, ids=[case[0] for case in TEXT_MODELS])
def test_every_text_family_answers_the_references_examples(bedrock, model_id, body, text_of):
    for form in model_id_forms(model_id):
        answer = invoke(bedrock, form, body)
        assert set(answer) == answer_keys(model_id)
        assert text_of(answer) == ANSWER


@pytest.mark.parametrize("model_id, body, json_key, length", EMBEDDING_MODELS,
                         ids=[f"{case[0]}-{case[2]}" for case in EMBEDDING_MODELS])
def test_every_embedding_family_answers_the_references_examples(bedrock, model_id, body, json_key, length):
    for form in model_id_forms(model_id):
        value = invoke(bedrock, form, body)
        for segment in json_key.split("."):
            value = value[int(segment) if isinstance(value, list) else segment]
        assert len(value) == length and all(isinstance(number, float) for number in value)


def test_a_model_cut_at_its_token_limit_says_so(bedrock):
    text = "Databases store data. Postgres is a database that stores data in tables."
    cases = [
        ("amazon.titan-text-express-v1", {"inputText": text, "textGenerationConfig": {"maxTokenCount": 2}},
         lambda a: (a["results"][0]["outputText"], a["results"][0]["completionReason"]), "LENGTH"),
        ("amazon.nova-pro-v1:0", {"messages": [{"role": "user", "content": [{"text": text}]}],
                                  "inferenceConfig": {"maxTokens": 2}},
         lambda a: (a["output"]["message"]["content"][0]["text"], a["stopReason"]), "max_tokens"),
        ("cohere.command-text-v14", {"prompt": text, "max_tokens": 2},
         lambda a: (a["generations"][0]["text"].strip(), a["generations"][0]["finish_reason"]), "MAX_TOKENS"),
        ("meta.llama3-8b-instruct-v1:0", {"prompt": text, "max_gen_len": 2},
         lambda a: (a["generation"], a["stop_reason"]), "length"),
        ("mistral.mistral-7b-instruct-v0:2", {"prompt": text, "max_tokens": 2},
         lambda a: (a["outputs"][0]["text"].strip(), a["outputs"][0]["stop_reason"]), "length"),
        ("ai21.jamba-1-5-large-v1:0", {"messages": [{"role": "user", "content": text}], "max_tokens": 2},
         lambda a: (a["choices"][0]["message"]["content"], a["choices"][0]["finish_reason"]), "length"),
    ]
    for model_id, body, cut, reason in cases:
        assert cut(invoke(bedrock, model_id, body)) == ("Databases store", reason), model_id


@pytest.mark.parametrize("model_id, body, named", [
    ("amazon.titan-text-express-v1", {"prompt": "hi"}, "required key [inputText]"),
    ("amazon.titan-text-express-v1", {"inputText": "hi", "textGenerationConfig": {"maxTokens": 5}},
     "#/textGenerationConfig: extraneous key [maxTokens]"),
    ("amazon.nova-lite-v1:0", {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, '"user" role'),
    ("amazon.nova-lite-v1:0", {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                               "inferenceConfig": {"temperature": 3}}, "#/inferenceConfig/temperature"),
    ("amazon.nova-lite-v1:0", {"schemaVersion": "messages-v2", "messages": []}, "schemaVersion"),
    ("cohere.command-text-v14", {"prompt": "hi", "num_generations": 9}, "#/num_generations"),
    ("cohere.command-r-v1:0", {"prompt": "hi"}, "required key [message]"),
    ("meta.llama3-8b-instruct-v1:0", {"prompt": "hi", "max_tokens": 5}, "extraneous key [max_tokens]"),
    ("mistral.mistral-7b-instruct-v0:2", {"prompt": "hi", "temperature": 2}, "#/temperature"),
    ("mistral.mistral-large-2407-v1:0", {"messages": [{"role": "user", "content": "hi"}], "stop": ["x"]},
     "extraneous key [stop]"),
    ("ai21.jamba-1-5-mini-v1:0", {"messages": []}, "minimum item count"),
    ("amazon.titan-embed-image-v1", {}, "required key [inputText] or [inputImage]"),
    ("amazon.titan-embed-image-v1", {"inputImage": "not base64!"}, "base64"),
    ("amazon.titan-embed-image-v1", {"inputText": "hi", "embeddingConfig": {"outputEmbeddingLength": 100}},
     "outputEmbeddingLength"),
])
def test_each_family_refuses_a_body_that_is_not_its_own(bedrock, model_id, body, named):
    answer = refused(bedrock, model_id, body)
    assert answer["Error"]["Code"] == "ValidationException"
    assert answer["Error"]["Message"].startswith("Malformed input request: ")
    assert named in answer["Error"]["Message"]


@pytest.mark.parametrize("model_id", ["amazon.nova-canvas-v1:0", "amazon.titan-image-generator-v2:0",
                                      "stability.sd3-large-v1:0", "us.amazon.nova-sonic-v1:0", "cohere.rerank-v3-5:0"])
def test_a_model_of_no_emulated_family_is_unknown(bedrock, model_id):
    answer = refused(bedrock, model_id, {"inputText": "hello"})
    assert answer["Error"] == {"Code": "ValidationException", "Message": "The provided model identifier is invalid."}
