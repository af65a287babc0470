"""Comprehend through boto3: sentiment, batches, limits and errors."""
import pytest
from botocore.exceptions import ClientError

SCORES = ("Positive", "Negative", "Neutral", "Mixed")


@pytest.mark.parametrize(
    "text, sentiment",
    [
        ("I love this product", "POSITIVE"),
        ("This is terrible", "NEGATIVE"),
        ("When will the new version of this product be released?", "NEUTRAL"),
        ("Your product is too complex, but your support is great.", "MIXED"),
        ("The latest version of this product stinks!", "NEGATIVE"),
    ],
)
def test_detect_sentiment(client, text, sentiment):
    answer = client("comprehend").detect_sentiment(Text=text, LanguageCode="en")
    assert answer["Sentiment"] == sentiment
    scores = answer["SentimentScore"]
    assert set(scores) == set(SCORES)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert max(scores, key=scores.get).upper() == sentiment


def test_other_languages_are_scored_too(client):
    answer = client("comprehend").detect_sentiment(Text="Ce produit est formidable", LanguageCode="fr")
    assert answer["Sentiment"] in ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")


def test_batch_of_25_in_order(client, emulator):
    texts = ["I love this product", "This is terrible"] * 12 + ["When will it ship?"]
    answer = client("comprehend").batch_detect_sentiment(TextList=texts, LanguageCode="en")
    assert answer["ErrorList"] == []
    assert [r["Index"] for r in answer["ResultList"]] == list(range(25))
    assert [r["Sentiment"] for r in answer["ResultList"]] == ["POSITIVE", "NEGATIVE"] * 12 + ["NEUTRAL"]
    counted = emulator.counters()["comprehend"]["BatchDetectSentiment"]
    assert (counted["requests"], counted["items"], counted["batch_sizes"]) == (1, 25, [25])


def test_batch_of_26_is_refused(client):
    with pytest.raises(ClientError) as refused:
        client("comprehend").batch_detect_sentiment(TextList=["fine"] * 26, LanguageCode="en")
    assert refused.value.response["Error"]["Code"] == "BatchSizeLimitExceededException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_batch_puts_an_oversized_document_in_the_error_list(client):
    texts = ["I love this product", "x" * 5001, "This is terrible"]
    answer = client("comprehend").batch_detect_sentiment(TextList=texts, LanguageCode="en")
    assert [(r["Index"], r["Sentiment"]) for r in answer["ResultList"]] == [(0, "POSITIVE"), (2, "NEGATIVE")]
    [error] = answer["ErrorList"]
    assert error["Index"] == 1
    assert error["ErrorCode"]
    assert "5001 bytes" in error["ErrorMessage"]


def test_text_limit_counts_utf8_bytes(client):
    comprehend = client("comprehend")
    comprehend.detect_sentiment(Text="é" * 2500, LanguageCode="en")
    with pytest.raises(ClientError) as refused:
        comprehend.detect_sentiment(Text="é" * 2501, LanguageCode="en")
    assert refused.value.response["Error"]["Code"] == "TextSizeLimitExceededException"
    assert "5002 bytes" in refused.value.response["Error"]["Message"]


def test_empty_text_is_a_validation_error(client):
    unchecked = client("comprehend", parameter_validation=False)
    with pytest.raises(ClientError) as refused:
        unchecked.detect_sentiment(Text="", LanguageCode="en")
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_language_outside_the_enum_is_a_validation_error(client):
    with pytest.raises(ClientError) as refused:
        client("comprehend").detect_sentiment(Text="hello", LanguageCode="xx")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'xx'" in refused.value.response["Error"]["Message"]


def test_validation_errors_count_as_errors(client, emulator):
    with pytest.raises(ClientError):
        client("comprehend").detect_sentiment(Text="hello", LanguageCode="xx")
    counted = emulator.counters()["comprehend"]["DetectSentiment"]
    assert (counted["requests"], counted["errors"], counted["items"]) == (1, 1, 0)


def test_operations_not_emulated_go_to_moto(client, emulator):
    answer = client("comprehend").detect_key_phrases(Text="The quick brown fox", LanguageCode="en")
    assert "KeyPhrases" in answer
    assert emulator.counters()["comprehend"]["DetectKeyPhrases"]["requests"] == 1
