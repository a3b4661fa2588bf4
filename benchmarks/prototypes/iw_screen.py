"""Screen of bias-corrected learning (issue 15): the exploration share's labels count more.

Hypothesis. Uncertainty sampling hands the model a biased sample: most labels come from
near its current boundary. A discriminative model (logistic regression) does not need
the sample to be representative, but a generative one does: Gaussian naive Bayes
estimates each class's means and variances from its labels, and the Hoeffding tree's
leaves (and ARF's) predict by naive Bayes and split on the class statistics they saw.
Importance weighting corrects the bias (Beygelzimer, Dasgupta & Langford, "Importance
weighted active learning", ICML 2009; for streams, Bouguelia, Belaïd & Belaïd 2018):
learn each label with weight ``1/q``, ``q`` the probability that its arrival was
queried. Under the default manager an arrival whose score passed the quantile
threshold had ``q`` close to 1, while one drawn by the exploration share (score below
the threshold) had ``q = explore · rate`` (0.025 at rate 0.1), a weight of 40 that would
make one label drown the rest; the screen clips it to ``k`` (2 or 4): the model learns
an explored label ``k`` times (river's GaussianNB takes no weight; repeating is the
same for its running moments, and close to a weight for the others).

Pieces (registered for one ``selection.py`` run, shared through this module):

* strategy ``margin_note``: ``margin``, noting the arrival it scored;
* budget ``reserve_note``: ``reserve_quantile`` that notes the arrivals its exploration
  draw chose (the quantile branch did not run for them);
* model specs ``iw_screen:MODEL_K``: the registered ``MODEL`` (seed 1, as the suite's)
  learning a noted label ``K`` times. ``K = 1`` gives the default's runs exactly.

Usage::

    python benchmarks/prototypes/iw_screen.py --part first2000 --delays 0 --no-peers \\
      --streams Elec2,Bananas,SEA,Hyperplane,breast_cancer,digits \\
      --models iw_screen:gnb_1,iw_screen:gnb_4 --pairs margin_note/reserve_note:initial=200
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from river import base

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from streamal.budgets.reserve import ReserveQuantile  # noqa: E402
from streamal.core.models import build_model  # noqa: E402
from streamal.core.registry import make_strategy  # noqa: E402
from streamal.strategies.base import Strategy  # noqa: E402

SEED = 1
_Key = tuple[tuple[str, Any], ...]
#: Arrivals the exploration share chose (keys of their features), until learned.
EXPLORED: set[_Key] = set()
#: The arrival scored last (the manager decides on it right after).
LAST: list[_Key | None] = [None]
_UNSET = object()


def _key(x: dict[str, Any]) -> _Key:
    return tuple(x.items())


class MarginNote(Strategy):
    """``margin``, noting which arrival it scored."""

    def __init__(self) -> None:
        self._inner = make_strategy("margin")

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        LAST[0] = _key(x)
        return self._inner.score(x, proba, model)


class ReserveNote(ReserveQuantile):
    """``reserve_quantile``, noting the arrivals its exploration draw chose."""

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        before = self._theta
        self._theta = _UNSET  # type: ignore[assignment]
        wanted = super()._wants(score, allowed, ts, pending)
        if self._theta is _UNSET:  # the exploration branch returned before the quantile
            self._theta = before
            if wanted and LAST[0] is not None:
                EXPLORED.add(LAST[0])
        return wanted


class Repeat(base.Classifier):  # type: ignore[misc]
    """``inner``, learning some labels ``k`` times: ``which`` is ``"explored"`` (those
    the exploration draw chose), ``"chosen"`` (the others) or ``"all"``."""

    def __init__(self, inner: Any, k: int, which: str = "explored") -> None:
        self.inner = inner
        self.k = k
        self.which = which
        self.repeated = 0
        EXPLORED.clear()  # a new run

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        key = _key(x)
        explored = key in EXPLORED
        EXPLORED.discard(key)
        which = self.which
        times = 1
        if which == "all" or (which == "explored") == explored:
            times = self.k
            self.repeated += 1
        for _ in range(times):
            self.inner.learn_one(x, y)

    def predict_proba_one(self, x: dict[str, Any], **kwargs: Any) -> dict[Any, float]:
        proba: dict[Any, float] = self.inner.predict_proba_one(x)
        return proba

    def predict_one(self, x: dict[str, Any], **kwargs: Any) -> Any:
        return self.inner.predict_one(x)


_WHICH = {"": "explored", "c": "chosen", "a": "all"}


def __getattr__(name: str) -> Callable[[], Repeat]:
    """``MODEL_K`` (e.g. ``gnb_4``): the registered ``MODEL`` learning explored labels K
    times; ``MODEL_cK`` the labels the quantile rule chose, ``MODEL_aK`` every label."""
    model, _, k = name.rpartition("_")
    which = _WHICH.get(k[:1] if k[:1].isalpha() else "")
    k = k.lstrip("ca")
    if not model or not k.isdigit() or which is None:
        raise AttributeError(name)
    return lambda: Repeat(build_model(model, seed=SEED), int(k), which)


def main(argv: list[str]) -> int:
    import selection

    from streamal.core.registry import register_budget, register_strategy

    register_strategy("margin_note", MarginNote, "margin, noting the arrival it scored")
    register_budget("reserve_note", ReserveNote, "reserve_quantile noting exploration draws")
    return int(selection.main(argv) or 0)


if __name__ == "__main__":
    import iw_screen  # the module the model specs load, so that all share EXPLORED

    raise SystemExit(iw_screen.main(sys.argv[1:]))
