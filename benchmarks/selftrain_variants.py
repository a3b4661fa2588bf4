"""Self-training screened for sparse labels (issue 15), as ``module:attr`` model specs.

``python benchmarks/selection.py --models selftrain_variants:gnb_90 ...`` wraps the
registered model in :class:`SelfTraining`: after each prediction whose top probability
reaches ``tau`` (once the model has learned ``min_labels`` real labels), the model also
learns the arrival with its predicted class (a pseudo-label; Yarowsky-style
self-training, e.g. Triguero, García, Herrera, *Self-labeled techniques for
semi-supervised learning*, KAIS 42, 2015). The active learner is unchanged: the labels
bought and their count are the default's; only what the model does with the unlabelled
arrivals differs. Compare against the plain model with ``compare_cells.py --ref-model``.

The learner predicts each arrival once (``ActiveLearner.process``), before deciding, so
the pseudo-label is learned after the prediction that the prequential accuracy counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from river import base

from streamal.core.models import build_model

SEED = 1


class SelfTraining(base.Classifier):  # type: ignore[misc]
    """``inner`` plus pseudo-labels of its confident predictions."""

    def __init__(self, inner: Any, tau: float, min_labels: int = 20) -> None:
        self.inner = inner
        self.tau = tau
        self.min_labels = min_labels
        self.labels = 0
        self.pseudo = 0

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        self.inner.learn_one(x, y)
        self.labels += 1

    def predict_proba_one(self, x: dict[str, Any], **kwargs: Any) -> dict[Any, float]:
        proba: dict[Any, float] = self.inner.predict_proba_one(x)
        if self.labels >= self.min_labels and proba:
            top, p = max(proba.items(), key=lambda kv: kv[1])
            if p >= self.tau:
                self.inner.learn_one(x, top)
                self.pseudo += 1
        return proba

    def predict_one(self, x: dict[str, Any], **kwargs: Any) -> Any:
        proba = self.inner.predict_proba_one(x)
        return max(proba, key=proba.__getitem__) if proba else None


def __getattr__(name: str) -> Callable[[], SelfTraining]:
    """``MODEL_TT`` (e.g. ``gnb_90``): the registered ``MODEL`` with ``tau = TT / 100``."""
    model, _, tau = name.rpartition("_")
    if not model or not tau.isdigit():
        raise AttributeError(name)
    return lambda: SelfTraining(build_model(model, seed=SEED), int(tau) / 100)
