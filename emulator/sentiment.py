"""Comprehend-style sentiment from VADER.

VADER gives the shares of positive, negative and neutral words (pos, neg, neu)
and a compound polarity in [-1, 1]. Comprehend gives four confidences that sum
to 1. The mapping:

- polar mass s = sqrt(|compound|): how far from neutral the text is; the square
  root lifts mild texts ("... stinks!", compound -0.32) out of NEUTRAL, as
  Comprehend does. Neutral = 1 - s.
- s is shared between Mixed, Positive and Negative by VADER's pos and neg
  shares: the balance m = 2 min(pos, neg) / (pos + neg) (0 when one-sided, 1
  when evenly split) goes to Mixed, the rest to Positive and Negative in
  proportion to pos and neg.
- VADER's lexicon has no weight for complaints of excess ("too complex", "way
  too long"), so "too" followed by a word VADER does not score adds a negative
  share of 0.25 and moves compound by -0.3.

Sentiment is the label with the highest score. VADER is English-only; texts in
the other languages are scored the same way, which mostly gives NEUTRAL.
"""
import math
import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_ANALYZER = SentimentIntensityAnalyzer()
_EXCESS = re.compile(r"\btoo\s+([a-z']+)", re.IGNORECASE)
EXCESS_SHARE = 0.25
EXCESS_COMPOUND = 0.3


def _excess_cues(text):
    return sum(1 for word in _EXCESS.findall(text) if word.lower() not in _ANALYZER.lexicon)


def detect(text):
    """(label, {"Positive", "Negative", "Neutral", "Mixed"}) for a text."""
    vader = _ANALYZER.polarity_scores(text)
    pos, neg, compound = vader["pos"], vader["neg"], vader["compound"]
    cues = _excess_cues(text)
    neg += EXCESS_SHARE * cues
    compound = max(-1.0, compound - EXCESS_COMPOUND * cues)

    polar = math.sqrt(abs(compound))
    scores = {"Positive": 0.0, "Negative": 0.0, "Neutral": 1.0 - polar, "Mixed": 0.0}
    if pos + neg > 0:
        balance = 2 * min(pos, neg) / (pos + neg)
        scores["Mixed"] = polar * balance
        scores["Positive"] = polar * (1 - balance) * pos / (pos + neg)
        scores["Negative"] = polar * (1 - balance) * neg / (pos + neg)
    label = max(scores, key=scores.get)
    return label.upper(), scores
