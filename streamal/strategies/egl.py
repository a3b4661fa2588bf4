"""Expected gradient length for linear models.

References
----------
Settles, B., Craven, M., & Ray, S. (2008). Multiple-instance active learning. Advances in
Neural Information Processing Systems 20 (NIPS 2007), 1289–1296.
Settles, B. (2009). Active learning literature survey. Computer Sciences Technical
Report 1648, University of Wisconsin–Madison (section 3.4, expected model change).
"""

from __future__ import annotations

import math
from typing import Any

from river import compose

from streamal.exceptions import ConfigError
from streamal.strategies.base import Strategy, normalize

__all__ = ["ExpectedGradientLength", "linear_features"]


def _is_linear(model: Any) -> bool:
    if type(model).__module__.startswith("river.linear_model"):
        return True
    inner = getattr(model, "classifier", None)  # BinaryLabels, OneVsRestClassifier
    return inner is not None and _is_linear(inner)


def linear_features(model: Any, x: dict[str, Any]) -> dict[str, Any]:
    """The features the linear model at the end of ``model`` sees for ``x``.

    Raises
    ------
    ConfigError
        If ``model`` does not end in a river linear model.
    """
    final = model
    if isinstance(model, compose.Pipeline):
        steps = list(model.steps.values())
        for step in steps[:-1]:
            x = step.transform_one(x)
        final = steps[-1]
    if not _is_linear(final):
        raise ConfigError(
            f"expected gradient length needs a linear model (logreg, softmax, ovr), "
            f"got {type(final).__name__}"
        )
    return x


class ExpectedGradientLength(Strategy):
    """How far one label would move a linear model: the expected norm of the log-loss gradient.

    For a linear model with weights ``w`` (and an intercept) the gradient of the log loss
    for label ``y`` is ``(p − e_y) ⊗ (x, 1)``, so its norm is ``‖p − e_y‖ · ‖(x, 1)‖`` with
    ``x`` the features the model sees (scaled, one-hot encoded). Its expectation over the
    model's posterior is ``g = ‖(x, 1)‖ · Σ_y p_y ‖p − e_y‖ / √2`` (the ``√2`` makes the
    binary case the familiar ``2 p (1 − p) ‖(x, 1)‖``). Unlike uncertainty sampling it
    prefers uncertain arrivals with large features, which move the weights most.

    The score squashes ``g`` to ``[0, 1]`` as ``1 − exp(−g / g_ref)``, with ``g_ref``
    the gradient of a maximally uncertain binary arrival of typical norm
    ``√(d + 1)`` for ``d`` standardized features (so such an arrival scores 0.63).
    Use it with a manager that adapts to the score distribution (variable threshold,
    BIQF) rather than a fixed threshold.

    Parameters
    ----------
    scale
        ``g_ref``; ``None`` uses ``0.5 · √(d + 1)``.

    Examples
    --------
    >>> from streamal.core.models import build_model
    >>> model = build_model("logreg")
    >>> for i in range(50):
    ...     model.learn_one({"a": float(i % 5), "b": float(i % 3)}, i % 5 > 2)
    >>> s = ExpectedGradientLength()
    >>> p = model.predict_proba_one({"a": 2.0, "b": 1.0})
    >>> far = s.score({"a": 40.0, "b": 1.0}, p, model)
    >>> near = s.score({"a": 2.0, "b": 1.0}, p, model)
    >>> 0.0 < near < far <= 1.0
    True
    """

    def __init__(self, scale: float | None = None) -> None:
        self.scale = scale

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        if model is None:
            raise ConfigError("expected gradient length reads the model; pass the model")
        z = linear_features(model, x)
        p = normalize(proba)
        if not p:
            return 1.0
        norm = math.sqrt(1.0 + sum(v * v for v in z.values() if isinstance(v, int | float)))
        spread = 0.0
        sq = sum(v * v for v in p)
        for v in p:
            # ‖p − e_y‖² = Σ p² − 2 p_y + 1
            spread += v * math.sqrt(max(0.0, sq - 2.0 * v + 1.0))
        g = norm * spread / math.sqrt(2.0)
        ref = self.scale if self.scale is not None else 0.5 * math.sqrt(len(z) + 1.0)
        return 1.0 - math.exp(-g / ref)
