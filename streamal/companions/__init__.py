"""Companions of the live service: feed it samples, record topics, answer its queries.

The loops are in :mod:`streamal.companions.loops`, the annotators that answer queries
in :mod:`streamal.companions.annotators`.
"""

from streamal.companions.loops import (
    AnnotatorStats,
    Answerer,
    FromStart,
    answer_queries,
    poll_until,
    produce,
    record,
)

__all__ = [
    "AnnotatorStats",
    "Answerer",
    "FromStart",
    "answer_queries",
    "poll_until",
    "produce",
    "record",
]
