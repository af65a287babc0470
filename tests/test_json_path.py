"""json_key paths (plpython/aws_ml/json_path.py), outside the server: the
properties hold for any JSON document hypothesis comes up with."""
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plpython"))

from aws_ml.errors import AwsMlError  # noqa: E402
from aws_ml.json_path import vector  # noqa: E402

numbers = st.one_of(st.floats(allow_nan=False), st.integers(min_value=-2**53, max_value=2**53))
vectors = st.lists(numbers, max_size=20)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
keys = st.text(max_size=12)
plain_keys = st.text(max_size=12).filter(lambda key: "." not in key)
not_numbers = st.one_of(st.none(), st.booleans(), st.text(max_size=10),
                        st.dictionaries(keys, json_values, max_size=3))


def refused(document, json_key):
    with pytest.raises(AwsMlError) as caught:
        vector(document, json_key)
    assert caught.value.sqlstate == "22023"
    assert f'json_key "{json_key}"' in caught.value.message
    return caught.value


@given(st.dictionaries(keys, json_values, max_size=5), keys, vectors)
def test_any_top_level_key_is_taken_whole(document, json_key, values):
    assert vector({**document, json_key: values}, json_key) == [float(v) for v in values]


@st.composite
def nested(draw):
    """(document, path, vector) with the vector at path: each step an object
    key among other keys, or an index into an array among other elements."""
    values = draw(vectors)
    document, segments = values, []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            key = draw(plain_keys)
            document = {**draw(st.dictionaries(plain_keys, json_values, max_size=3)), key: document}
            segments.append(key)
        else:
            before, after = draw(st.lists(json_values, max_size=3)), draw(st.lists(json_values, max_size=3))
            document = [*before, document, *after]
            segments.append(str(len(before)))
    return document, ".".join(reversed(segments)), values


@given(nested())
def test_dotted_path_reaches_the_nested_vector(case):
    document, path, values = case
    assert vector(document, path) == [float(v) for v in values]


def test_models_that_nest_their_vectors():
    assert vector({"embedding": [1, 2], "embeddingsByType": {"float": [0.5, -1]}}, "embeddingsByType.float") \
        == [0.5, -1.0]
    assert vector({"embeddings": [[3, 4.25]], "texts": ["x"]}, "embeddings.0") == [3.0, 4.25]


@given(st.dictionaries(plain_keys, json_values, max_size=5), plain_keys)
def test_missing_key_names_it_and_lists_the_keys_there(document, json_key):
    document.pop(json_key, None)
    error = refused(document, json_key)
    assert f'no key "{json_key}"' in error.message
    for key in document:
        assert f'"{key}"' in error.detail


@given(plain_keys.filter(lambda key: key != "other"), st.lists(numbers, max_size=5), not_numbers, st.data())
def test_an_element_that_is_not_a_number_is_refused(json_key, values, bad, data):
    position = data.draw(st.integers(min_value=0, max_value=len(values)))
    error = refused({json_key: values[:position] + [bad] + values[position:], "other": 1}, json_key)
    assert "not an array of numbers" in error.message
    assert '"other"' in error.detail


@given(plain_keys, not_numbers)
def test_a_value_that_is_not_an_array_is_refused(json_key, value):
    error = refused({json_key: value}, json_key)
    assert "not an array of numbers" in error.message


@given(plain_keys, plain_keys, scalars)
def test_a_path_into_a_scalar_is_refused(first, second, scalar):
    error = refused({first: scalar}, f"{first}.{second}")
    assert f"{first} is " in error.message and "not an object or an array" in error.message


@given(st.lists(vectors, max_size=4), st.integers(min_value=0, max_value=10))
def test_an_index_past_the_end_is_refused(arrays, extra):
    index = len(arrays) + extra
    error = refused({"embeddings": arrays}, f"embeddings.{index}")
    assert f'no element "{index}"' in error.message
    assert f"{len(arrays)} element(s)" in error.detail


def test_an_integer_beyond_float8_is_refused():
    refused({"embedding": [1, 10**400]}, "embedding")
