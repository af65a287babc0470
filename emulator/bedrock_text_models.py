"""The Bedrock text models the emulator answers, each with its own request
and answer: Amazon Titan Text and Nova, Anthropic Claude (text completions
and messages), Cohere Command and Command R, Meta Llama, Mistral (text
completions and chat), AI21 Jamba. Each function takes the model's id and
the parsed request body and returns (answer, items). The answer is
completion.py's, from the text the request asks about."""
import hashlib
import json
import re

from . import bedrock_input as given
from . import completion
from .bedrock_input import InvalidPrompt, MalformedInput

ANTHROPIC_VERSION = "bedrock-2023-05-31"
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
# The instruction formats Llama and Mistral prompts are written in: their
# markers carry no words of the question.
_PROMPT_MARKERS = re.compile(r"<\|start_header_id\|>\w+<\|end_header_id\|>|<\|[a-z_]+\|>|</?s>|\[/?INST\]|<</?SYS>>")


def _digest(body, size=12):
    return hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=size).hexdigest()


def _reply(asked, max_tokens):
    """(the reply to the text asked, whether max_tokens cut it, its token counts)."""
    reply, cut = completion.answer(asked, max_tokens)
    return reply, cut, completion.token_count(asked), completion.token_count(reply)


def _last_user_text(messages, text_of, user="user"):
    if messages[0].get("role") != user:
        raise MalformedInput(f'#/messages: the first message must use the "{user}" role')
    return [text_of(message) for message in messages if message.get("role") == user][-1]


def titan_text(model_id, body):
    given.require(body, "inputText")
    given.only(body, "inputText", "textGenerationConfig")
    asked = given.text(body, "inputText")
    config = given.obj(body, "textGenerationConfig")
    where = "#/textGenerationConfig"
    given.only(config, "temperature", "topP", "maxTokenCount", "stopSequences", where=where)
    given.number(config, "temperature", 0, 1, where)
    given.number(config, "topP", 0, 1, where)
    given.strings(config, "stopSequences", where=where)
    reply, cut, asked_tokens, reply_tokens = _reply(asked, given.integer(config, "maxTokenCount", 0, 8192, 512, where))
    return {"inputTextTokenCount": asked_tokens,
            "results": [{"tokenCount": reply_tokens, "outputText": reply,
                         "completionReason": "LENGTH" if cut else "FINISH"}]}, 1


def _nova_text(message):
    content = message.get("content")
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise MalformedInput("#/messages: content must be a list of content blocks")
    return "\n".join(str(block["text"]) for block in content if "text" in block)


def nova(model_id, body):
    """Amazon Nova's messages-v1 schema."""
    given.require(body, "messages")
    given.only(body, "schemaVersion", "system", "messages", "inferenceConfig", "toolConfig")
    given.one_of(body, "schemaVersion", ("messages-v1",), "messages-v1")
    given.objects(body, "system")
    asked = _last_user_text(given.objects(body, "messages", required=True), _nova_text)
    config = given.obj(body, "inferenceConfig")
    where = "#/inferenceConfig"
    given.only(config, "maxTokens", "max_new_tokens", "temperature", "topP", "top_p", "topK", "top_k",
               "stopSequences", where=where)
    given.number(config, "temperature", 0, 1, where)
    for key in ("topP", "top_p"):
        given.number(config, key, 0, 1, where)
    given.strings(config, "stopSequences", where=where)
    max_tokens = given.integer(config, "maxTokens", 1, 10000, None, where) or \
        given.integer(config, "max_new_tokens", 1, 10000, 5000, where)
    reply, cut, asked_tokens, reply_tokens = _reply(asked, max_tokens)
    return {"output": {"message": {"role": "assistant", "content": [{"text": reply}]}},
            "stopReason": "max_tokens" if cut else "end_turn",
            "usage": {"inputTokens": asked_tokens, "outputTokens": reply_tokens,
                      "totalTokens": asked_tokens + reply_tokens}}, 1


def _claude_completion(body):
    """Exactly the three keys Claude v2 answers a text completion with."""
    given.require(body, "prompt", "max_tokens_to_sample")
    prompt = given.text(body, "prompt")
    if HUMAN not in prompt:
        raise InvalidPrompt(f'Invalid prompt: prompt must start with "{HUMAN}" turn')
    if not prompt.rstrip(" ").endswith(ASSISTANT):
        raise InvalidPrompt(f'Invalid prompt: prompt must end with "{ASSISTANT}" turn')
    question = prompt.rsplit(ASSISTANT, 1)[0].split(HUMAN, 1)[1]
    reply, cut = completion.answer(question, given.integer(body, "max_tokens_to_sample", 0))
    if cut:
        return {"completion": " " + reply if reply else "", "stop_reason": "max_tokens", "stop": None}, 1
    return {"completion": " " + reply, "stop_reason": "stop_sequence", "stop": HUMAN}, 1


def _claude_message_text(message):
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "\n".join(str(block.get("text", "")) for block in content)
    raise MalformedInput("#/messages: content must be a string or a list of text blocks")


def _claude_messages(model_id, body):
    given.require(body, "anthropic_version", "messages", "max_tokens")
    given.one_of(body, "anthropic_version", (ANTHROPIC_VERSION,))
    asked = _last_user_text(given.objects(body, "messages", required=True), _claude_message_text)
    reply, cut, asked_tokens, reply_tokens = _reply(asked, given.integer(body, "max_tokens", 1))
    return {
        "id": f"msg_bdrk_{_digest(body)}",
        "type": "message",
        "role": "assistant",
        "model": re.sub(r"^anthropic\.|-v\d+(:\d+)?$", "", model_id),
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "max_tokens" if cut else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": asked_tokens, "output_tokens": reply_tokens},
    }, 1


def claude(model_id, body):
    return _claude_messages(model_id, body) if "messages" in body else _claude_completion(body)


_COHERE_SAMPLING = ("temperature", "p", "k", "max_tokens", "stop_sequences")


def _cohere_sampling(body):
    given.number(body, "temperature", 0, 5)
    given.number(body, "p", 0, 1)
    given.integer(body, "k", 0, 500)
    given.strings(body, "stop_sequences", 4)


def cohere_command(model_id, body):
    """Command and Command Light (text generation)."""
    given.require(body, "prompt")
    given.only(body, "prompt", *_COHERE_SAMPLING, "return_likelihoods", "stream", "num_generations", "logit_bias",
               "truncate")
    asked = given.text(body, "prompt")
    _cohere_sampling(body)
    given.one_of(body, "return_likelihoods", ("GENERATION", "ALL", "NONE"), "NONE")
    given.one_of(body, "truncate", ("NONE", "START", "END"), "END")
    given.boolean(body, "stream")
    count = given.integer(body, "num_generations", 1, 5, 1)
    reply, cut, _, _ = _reply(asked, given.integer(body, "max_tokens", 1, 4096, 20))
    digest = _digest(body, 16)
    return {"id": digest, "prompt": asked,
            "generations": [{"id": f"{digest}-{index}", "index": index, "text": " " + reply,
                             "finish_reason": "MAX_TOKENS" if cut else "COMPLETE"} for index in range(count)]}, 1


def cohere_command_r(model_id, body):
    """Command R and R+ (chat): the documents are its context."""
    given.require(body, "message")
    given.only(body, "message", "chat_history", "documents", "search_queries_only", "preamble", *_COHERE_SAMPLING,
               "prompt_truncation", "frequency_penalty", "presence_penalty", "seed", "return_prompt", "tools",
               "tool_results", "raw_prompting")
    message = given.text(body, "message")
    _cohere_sampling(body)
    history = given.objects(body, "chat_history")
    documents = given.objects(body, "documents")
    context = " ".join(str(value) for document in documents for value in document.values())
    asked = f"Context: {context}\nQuestion: {message}" if context else message
    reply, cut, _, _ = _reply(asked, given.integer(body, "max_tokens", 1, 4000, 4000))
    return {"response_id": _digest(body, 16), "generation_id": _digest(body, 16)[::-1], "text": reply,
            "chat_history": [*history, {"role": "USER", "message": message}, {"role": "CHATBOT", "message": reply}],
            "finish_reason": "MAX_TOKENS" if cut else "COMPLETE"}, 1


def llama(model_id, body):
    """Llama 2, 3, 3.1, 3.2, 3.3 and 4: a prompt in their instruction format."""
    given.require(body, "prompt")
    given.only(body, "prompt", "temperature", "top_p", "max_gen_len", "images")
    asked = _PROMPT_MARKERS.sub(" ", given.text(body, "prompt"))
    given.number(body, "temperature", 0, 1)
    given.number(body, "top_p", 0, 1)
    given.strings(body, "images")
    reply, cut, asked_tokens, reply_tokens = _reply(asked, given.integer(body, "max_gen_len", 1, 8192, 512))
    return {"generation": reply, "prompt_token_count": asked_tokens, "generation_token_count": reply_tokens,
            "stop_reason": "length" if cut else "stop"}, 1


def _chat_text(message):
    content = message.get("content")
    if not isinstance(content, str):
        raise MalformedInput("#/messages: content must be a string")
    return content


def mistral(model_id, body):
    """Mistral's text completions (a prompt), or chat (messages: Mistral Large 2407 and later)."""
    if "messages" not in body:
        given.require(body, "prompt")
        given.only(body, "prompt", "max_tokens", "stop", "temperature", "top_p", "top_k")
        given.strings(body, "stop")
        given.integer(body, "top_k", 1, 200)
    else:
        given.only(body, "messages", "max_tokens", "temperature", "top_p", "tools", "tool_choice")
    given.number(body, "temperature", 0, 1)
    given.number(body, "top_p", 0, 1)
    max_tokens = given.integer(body, "max_tokens", 1, 8192, 512)
    if "messages" not in body:
        reply, cut, _, _ = _reply(_PROMPT_MARKERS.sub(" ", given.text(body, "prompt")), max_tokens)
        return {"outputs": [{"text": " " + reply, "stop_reason": "length" if cut else "stop"}]}, 1
    reply, cut, _, _ = _reply(_last_user_text(given.objects(body, "messages", required=True), _chat_text),
                              max_tokens)
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "tool_calls": None},
                         "stop_reason": "length" if cut else "stop"}]}, 1


def jamba(model_id, body):
    """AI21 Jamba: chat messages, as OpenAI's chat completions."""
    given.require(body, "messages")
    given.only(body, "messages", "max_tokens", "temperature", "top_p", "stop", "n", "frequency_penalty",
               "presence_penalty", "tools", "response_format", "documents")
    messages = given.objects(body, "messages", required=True)
    asked = _last_user_text([m for m in messages if m.get("role") != "system"] or messages, _chat_text)
    given.number(body, "temperature", 0, 2)
    given.number(body, "top_p", 0, 1)
    given.strings(body, "stop")
    count = given.integer(body, "n", 1, 16, 1)
    reply, cut, asked_tokens, reply_tokens = _reply(asked, given.integer(body, "max_tokens", 1, 4096, 4096))
    return {"id": f"chatcmpl-{_digest(body)}", "model": re.sub(r"^ai21\.|-v\d+(:\d+)?$", "", model_id),
            "choices": [{"index": index, "message": {"role": "assistant", "content": reply, "tool_calls": None},
                         "finish_reason": "length" if cut else "stop"} for index in range(count)],
            "usage": {"prompt_tokens": asked_tokens, "completion_tokens": reply_tokens,
                      "total_tokens": asked_tokens + reply_tokens}}, 1
