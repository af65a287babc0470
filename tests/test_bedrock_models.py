"""Every request example of Bedrock's model-parameter reference through
aws_bedrock.invoke_model against the emulator, and each embedding family
through invoke_model_get_embeddings with its documented json_key, by model
id, inference profile and ARN; a model of no family stays an error."""
import json

import psycopg
import pytest

from tests.bedrock_examples import ANSWER, EMBEDDING_MODELS, TEXT_MODELS, answer_keys, model_id_forms

INVOKE = "SELECT aws_bedrock.invoke_model(%s, 'application/json', 'application/json', %s)"
EMBEDDINGS = "SELECT aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', %s, %s)"


@pytest.mark.parametrize("model_id, body, text_of", TEXT_MODELS, ids=[case[0] for case in TEXT_MODELS])
def test_every_text_family_through_invoke_model(db, model_id, body, text_of):
    for form in model_id_forms(model_id):
        answer = json.loads(db.execute(INVOKE, (form, json.dumps(body))).fetchone()[0])
        assert set(answer) == answer_keys(model_id), form
        assert text_of(answer) == ANSWER, form


@pytest.mark.parametrize("model_id, body, json_key, length", EMBEDDING_MODELS,
                         ids=[f"{case[0]}-{case[2]}" for case in EMBEDDING_MODELS])
def test_every_embedding_family_through_invoke_model_get_embeddings(db, model_id, body, json_key, length):
    vectors = [db.execute(EMBEDDINGS, (form, json_key, json.dumps(body))).fetchone()[0]
               for form in model_id_forms(model_id)]
    assert len(vectors[0]) == length
    assert all(vector == vectors[0] for vector in vectors)


@pytest.mark.parametrize("model_id", ["amazon.nova-canvas-v1:0", "stability.sd3-large-v1:0", "cohere.rerank-v3-5:0"])
def test_a_model_of_no_family_stays_an_error(db, model_id):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(INVOKE, (model_id, json.dumps({"inputText": "hello"})))
    assert caught.value.sqlstate == "42704"
    assert "The provided model identifier is invalid" in caught.value.diag.message_primary
