"""Answerers for the annotator loop: a simulated oracle and a person in a terminal.

The loop itself, :func:`streamal.companions.answer_queries`, reads queries and
publishes whatever labels its :class:`~streamal.companions.Answerer` makes ready.

- :class:`OracleAnswerer`, the simulated annotator of ``streamal oracle``: the recorded
  label after a wall-clock delay, with optional noise (the replay oracle,
  :class:`~streamal.offline.oracle.SimulatedOracle`, driven by wall time);
- :class:`HumanAnswerer`, the person at ``streamal annotate``: a ``prompt`` callback
  shows the query and returns what they typed; :func:`coerce_label` turns it into a
  class label of the right type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from streamal.messages import ClassLabel, Label, Query
from streamal.offline.oracle import SimulatedOracle

__all__ = ["HumanAnswerer", "OracleAnswerer", "coerce_label"]


class OracleAnswerer:
    """A simulated annotator: the recorded label after a wall-clock delay, maybe noisy.

    Parameters
    ----------
    truth
        True label of each sample id.
    oracle
        The replay oracle with a delay in seconds (``"2s"``, ``"exp:1s"``); its stream
        clock here is wall time.
    clock
        Wall clock (``time.time``); injected by tests.

    Examples
    --------
    >>> answerer = OracleAnswerer({"7": "spam"}, SimulatedOracle("0s"))
    >>> q = Query(sample_id="7", x={}, score=0.5, strategy="entropy", model_version=0)
    >>> answerer.ask(q), [(lb.sample_id, lb.y) for lb in answerer.due()]
    (True, [('7', 'spam')])
    """

    def __init__(
        self,
        truth: Mapping[str, Any],
        oracle: SimulatedOracle,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.truth = truth
        self.oracle = oracle
        self.clock = clock
        self._asked = 0

    def ask(self, query: Query) -> bool:
        if query.sample_id not in self.truth:
            return False
        self._asked += 1
        self.oracle.ask(query.sample_id, self.truth[query.sample_id], self._asked, self.clock())
        return True

    def due(self) -> list[Label]:
        return self.oracle.due(self._asked, self.clock())

    def waiting(self) -> int:
        return len(self.oracle)


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def coerce_label(text: str, query: Query) -> ClassLabel:
    """Turn typed text into a class label shaped like the query's prediction.

    Empty text accepts the prediction. A boolean prediction takes yes/no/true/false/1/0,
    an integer one an integer; otherwise a class named in ``proba`` or any text is taken
    as it is (JSON ``true``/``3`` become a boolean/an integer when there is no prediction).

    Raises
    ------
    ValueError
        If the text cannot be a label of that type.

    Examples
    --------
    >>> q = Query(sample_id="1", x={}, prediction=True, score=0.5, strategy="e", model_version=0)
    >>> coerce_label("no", q), coerce_label("", q)
    (False, True)
    >>> coerce_label("3", q.model_copy(update={"prediction": 1}))
    3
    """
    text = text.strip()
    pred = query.prediction
    if not text:
        if pred is None:
            raise ValueError("there is no prediction to accept: type a label")
        return pred
    if isinstance(pred, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{text!r} is not yes/no (true/false, 1/0)")
    if isinstance(pred, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer class") from None
    if pred is None and text not in query.proba:
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, bool | int) and not isinstance(value, float):
            return value
    return text


class HumanAnswerer:
    """A person answering in a terminal through ``prompt``.

    ``prompt(query, error)`` shows the query (and the previous input's error, if any) and
    returns the typed text, or ``None`` at end of input. Typing ``s`` skips a query (it
    is committed and never labelled); ``q`` or end of input stops the annotator (pass
    ``should_stop=lambda: human.stopped`` to :func:`answer_queries`; the query on
    screen then stays uncommitted).

    Examples
    --------
    >>> answers = iter(["maybe", "yes"])
    >>> human = HumanAnswerer(lambda q, err: next(answers), annotator="ann")
    >>> q = Query(sample_id="1", x={}, prediction=False, score=0.5, strategy="e", model_version=0)
    >>> human.ask(q), [(lb.y, lb.annotator) for lb in human.due()], human.errors
    (True, [(True, 'ann')], 1)
    """

    def __init__(
        self,
        prompt: Callable[[Query, str | None], str | None],
        annotator: str = "human",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prompt = prompt
        self.annotator = annotator
        self.clock = clock
        self.stopped = False
        self.skipped = 0
        self.errors = 0
        self._ready: list[Label] = []

    def ask(self, query: Query) -> bool:
        error = None
        while not self.stopped:
            text = self.prompt(query, error)
            if text is None or text.strip().lower() in {"q", "quit"}:
                self.stopped = True
                break
            if text.strip().lower() in {"s", "skip"}:
                self.skipped += 1
                return False
            try:
                y = coerce_label(text, query)
            except ValueError as err:
                self.errors += 1
                error = str(err)
                continue
            label = Label(sample_id=query.sample_id, y=y, ts=self.clock(), annotator=self.annotator)
            self._ready.append(label)
            return True
        return False

    def due(self) -> list[Label]:
        ready, self._ready = self._ready, []
        return ready

    def waiting(self) -> int:
        return 0
