"""The request examples of Bedrock's model-parameter reference (and AWS's SDK
examples), one or more a model family, asking a question whose answer is
in its context; where each family's answer puts its text; and the
embedding families with their documented json_key."""
import base64

CONTEXT_PROMPT = (
    "Context: The warehouse opens at 9 am. Returns are accepted within 30 days of purchase. "
    "Shipping is free above 50 dollars.\nQuestion: Within how many days are returns accepted?"
)
ANSWER = "Returns are accepted within 30 days of purchase."

# (model id, request body, the answer's text as a function of the answer)
TEXT_MODELS = [
    ("amazon.titan-text-premier-v1:0",
     {"inputText": CONTEXT_PROMPT, "textGenerationConfig": {"maxTokenCount": 512, "temperature": 0.5}},
     lambda answer: answer["results"][0]["outputText"]),
    ("amazon.titan-text-express-v1",
     {"inputText": CONTEXT_PROMPT,
      "textGenerationConfig": {"maxTokenCount": 4096, "stopSequences": [], "temperature": 0, "topP": 1}},
     lambda answer: answer["results"][0]["outputText"]),
    ("amazon.titan-text-lite-v1", {"inputText": CONTEXT_PROMPT},
     lambda answer: answer["results"][0]["outputText"]),
    ("amazon.nova-lite-v1:0",
     {"schemaVersion": "messages-v1", "system": [{"text": "Answer from the context only."}],
      "messages": [{"role": "user", "content": [{"text": CONTEXT_PROMPT}]}],
      "inferenceConfig": {"maxTokens": 500, "topP": 0.9, "topK": 20, "temperature": 0.7}},
     lambda answer: answer["output"]["message"]["content"][0]["text"]),
    ("amazon.nova-micro-v1:0",
     {"messages": [{"role": "user", "content": [{"text": CONTEXT_PROMPT}]}], "inferenceConfig": {"max_new_tokens": 300}},
     lambda answer: answer["output"]["message"]["content"][0]["text"]),
    ("anthropic.claude-v2",
     {"prompt": f"\n\nHuman: {CONTEXT_PROMPT}\n\nAssistant:", "max_tokens_to_sample": 200, "temperature": 0.5,
      "top_k": 250, "top_p": 1, "stop_sequences": ["\n\nHuman:"]},
     lambda answer: answer["completion"].strip()),
    ("anthropic.claude-instant-v1",
     {"prompt": f"\n\nHuman: {CONTEXT_PROMPT}\n\nAssistant:", "max_tokens_to_sample": 300},
     lambda answer: answer["completion"].strip()),
    ("anthropic.claude-3-haiku-20240307-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "temperature": 0.5,
      "messages": [{"role": "user", "content": [{"type": "text", "text": CONTEXT_PROMPT}]}]},
     lambda answer: answer["content"][0]["text"]),
    ("cohere.command-light-text-v14", {"prompt": CONTEXT_PROMPT, "max_tokens": 512, "temperature": 0.5},
     lambda answer: answer["generations"][0]["text"].strip()),
    ("cohere.command-r-v1:0", {"message": CONTEXT_PROMPT, "max_tokens": 512, "temperature": 0.5},
     lambda answer: answer["text"]),
    ("cohere.command-r-plus-v1:0",
     {"message": "Within how many days are returns accepted?",
      "documents": [{"title": "policy", "snippet": CONTEXT_PROMPT.split("\n")[0][len("Context: "):]}]},
     lambda answer: answer["text"]),
    ("meta.llama2-13b-chat-v1",
     {"prompt": f"<s>[INST] {CONTEXT_PROMPT} [/INST]", "max_gen_len": 512, "temperature": 0.5},
     lambda answer: answer["generation"]),
    ("meta.llama3-70b-instruct-v1:0",
     {"prompt": "\n<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
                f"{CONTEXT_PROMPT}\n<|eot_id|>\n<|start_header_id|>assistant<|end_header_id|>\n",
      "max_gen_len": 512, "temperature": 0.5},
     lambda answer: answer["generation"]),
    ("meta.llama3-1-8b-instruct-v1:0", {"prompt": CONTEXT_PROMPT, "top_p": 0.9},
     lambda answer: answer["generation"]),
    ("mistral.mistral-large-2402-v1:0",
     {"prompt": f"<s>[INST] {CONTEXT_PROMPT} [/INST]", "max_tokens": 512, "temperature": 0.5},
     lambda answer: answer["outputs"][0]["text"].strip()),
    ("mistral.mixtral-8x7b-instruct-v0:1",
     {"prompt": f"<s>[INST] {CONTEXT_PROMPT} [/INST]", "max_tokens": 200, "top_k": 50, "stop": ["[INST]"]},
     lambda answer: answer["outputs"][0]["text"].strip()),
    ("mistral.mistral-large-2407-v1:0",
     {"messages": [{"role": "user", "content": CONTEXT_PROMPT}], "max_tokens": 512, "temperature": 0.5},
     lambda answer: answer["choices"][0]["message"]["content"]),
    ("ai21.jamba-1-5-mini-v1:0",
     {"messages": [{"role": "system", "content": "Answer from the context only."},
                   {"role": "user", "content": CONTEXT_PROMPT}], "max_tokens": 512, "temperature": 0.5},
     lambda answer: answer["choices"][0]["message"]["content"]),
    ("ai21.jamba-instruct-v1:0", {"messages": [{"role": "user", "content": CONTEXT_PROMPT}], "n": 1},
     lambda answer: answer["choices"][0]["message"]["content"]),
]

_IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n a small image").decode()

# (model id, request body, its documented json_key, the vector's length)
EMBEDDING_MODELS = [
    ("amazon.titan-embed-text-v1", {"inputText": "PostgreSQL I/O monitoring views"}, "embedding", 1536),
    ("amazon.titan-embed-g1-text-02", {"inputText": "PostgreSQL I/O monitoring views"}, "embedding", 1536),
    ("amazon.titan-embed-text-v2:0", {"inputText": "PostgreSQL I/O monitoring views", "dimensions": 512,
                                      "normalize": True}, "embedding", 512),
    ("amazon.titan-embed-text-v2:0", {"inputText": "PostgreSQL I/O monitoring views", "embeddingTypes": ["float"]},
     "embeddingsByType.float", 1024),
    ("amazon.titan-embed-image-v1", {"inputText": "a red brick house", "inputImage": _IMAGE,
                                     "embeddingConfig": {"outputEmbeddingLength": 256}}, "embedding", 256),
    ("amazon.titan-embed-image-v1", {"inputText": "a red brick house"}, "embedding", 1024),
    ("cohere.embed-english-v3", {"texts": ["PostgreSQL I/O monitoring views"], "input_type": "search_document"},
     "embeddings.0", 1024),
    ("cohere.embed-multilingual-v3", {"texts": ["PostgreSQL", "supervision"], "input_type": "search_query",
                                      "embedding_types": ["float"]}, "embeddings.float.1", 1024),
]


# the top-level keys of each text family's answer, by the start of its models' ids
ANSWER_KEYS = {
    "amazon.titan-text-": {"inputTextTokenCount", "results"},
    "amazon.nova-": {"output", "stopReason", "usage"},
    "anthropic.claude-v2": {"completion", "stop_reason", "stop"},
    "anthropic.claude-instant": {"completion", "stop_reason", "stop"},
    "anthropic.claude-3": {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"},
    "cohere.command-r": {"response_id", "generation_id", "text", "chat_history", "finish_reason"},
    "cohere.command-light": {"id", "prompt", "generations"},
    "meta.llama": {"generation", "prompt_token_count", "generation_token_count", "stop_reason"},
    "mistral.mistral-large-2407": {"choices"},
    "mistral.": {"outputs"},
    "ai21.jamba": {"id", "model", "choices", "usage"},
}


def answer_keys(model_id):
    return next(keys for prefix, keys in ANSWER_KEYS.items() if model_id.startswith(prefix))


def model_id_forms(model_id):
    """The ways a call names a model: its id, a cross-region inference
    profile, the foundation model's ARN, the inference profile's ARN."""
    return [model_id, f"us.{model_id}", f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
            f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{model_id}"]
