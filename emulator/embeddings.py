"""Deterministic text embeddings with lexical similarity: feature hashing of
lower-cased words and of their character trigrams into a signed vector.
Texts sharing words (or word pieces) get a high cosine similarity. The hash is
blake2b, stable across processes (Python's hash() is salted per process)."""
import functools
import hashlib
import math
import re

_WORD = re.compile(r"\w+")
TRIGRAM_WEIGHT = 0.3


def words(text):
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=200_000)
def _hash(feature):
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")


def _features(text):
    for word in words(text):
        yield "w:" + word, 1.0
        padded = f"<{word}>"
        for start in range(len(padded) - 2):
            yield "c:" + padded[start : start + 3], TRIGRAM_WEIGHT


def embed(text, dimensions, normalize=True):
    """A list of `dimensions` floats; unit length when normalize (and the text
    has a word), else the raw hashed counts."""
    vector = [0.0] * dimensions
    for feature, weight in _features(text):
        hashed = _hash(feature)
        sign = 1.0 if hashed >> 63 else -1.0
        vector[hashed % dimensions] += sign * weight
    if normalize:
        norm = math.sqrt(sum(value * value for value in vector))
        if norm:
            vector = [value / norm for value in vector]
    return vector
