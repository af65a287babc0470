"""Deterministic answers for the text models: extractive, never invented.

With a "Context:" and a "Question:" part, the answer is the context sentence
sharing most words with the question; otherwise it is a summary: the two
sentences whose words are most frequent in the whole text, in text order."""
import re
from collections import Counter

from .embeddings import words

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PARTS = re.compile(r"(Context|Question)\s*:", re.IGNORECASE)
_STOP_WORDS = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was "
    "were what when where which who why will with you your".split()
)
SUMMARY_SENTENCES = 2


def _sentences(text):
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def _content_words(text):
    return [word for word in words(text) if word not in _STOP_WORDS]


def _parts(text):
    """{"context": ..., "question": ...} for the labelled parts present."""
    marks = list(_PARTS.finditer(text))
    parts = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        parts[mark.group(1).lower()] = text[mark.end() : end].strip()
    return parts


def _best_context_sentence(context, question):
    wanted = set(_content_words(question))
    sentences = _sentences(context)
    return max(sentences, key=lambda s: len(wanted & set(_content_words(s))), default="")


def _summary(text):
    sentences = _sentences(text)
    frequency = Counter(_content_words(text))

    def weight(sentence):
        counted = _content_words(sentence)
        return sum(frequency[word] for word in counted) / (len(counted) or 1)

    chosen = sorted(sorted(range(len(sentences)), key=lambda i: -weight(sentences[i]))[:SUMMARY_SENTENCES])
    return " ".join(sentences[i] for i in chosen)


def answer(text, max_tokens):
    """(answer, whether it was cut at max_tokens), a token being a word."""
    parts = _parts(text)
    if parts.get("context") and parts.get("question"):
        reply = _best_context_sentence(parts["context"], parts["question"])
    else:
        reply = _summary(text)
    tokens = reply.split()
    if len(tokens) > max_tokens:
        return " ".join(tokens[:max_tokens]), True
    return reply, False


def token_count(text):
    return len(text.split())
