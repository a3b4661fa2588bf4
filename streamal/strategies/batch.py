"""Batch selection for window mode: choose ``k`` of a window's arrivals at once.

A selector sees a :class:`Batch` (scores, standardized feature vectors, the vectors of
recently labelled samples, and the ensemble members' posteriors when available) and
returns the indices of the ``k`` arrivals to label. Used by
:class:`streamal.window.WindowLearner`.

References
----------
Sener, O., & Savarese, S. (2018). Active learning for convolutional neural networks: a
core-set approach. ICLR 2018 (k-center greedy).
Kirsch, A., van Amersfoort, J., & Gal, Y. (2019). BatchBALD: efficient and diverse
batch acquisition for deep Bayesian active learning. NeurIPS 2019.
Brinker, K. (2003). Incorporating diversity in active learning with support vector
machines. ICML 2003, 59–66 (uncertainty plus diversity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from river import base

__all__ = ["Batch", "BatchBALD", "CoreSet", "Diverse", "Selector", "TopK"]


@dataclass
class Batch:
    """What a selector may look at.

    ``vectors`` and ``centres`` (recently labelled samples) are standardized feature
    vectors with the same columns; ``members`` has shape ``(n, M, C)`` (member
    posteriors over the window's classes) or is ``None`` when the model is no ensemble.
    """

    scores: np.ndarray
    vectors: np.ndarray
    centres: np.ndarray
    members: np.ndarray | None = None


class Selector(base.Base):  # type: ignore[misc]
    """Chooses ``k`` indices of a batch."""

    needs_members = False

    def select(self, batch: Batch, k: int, rng: np.random.Generator) -> list[int]:
        raise NotImplementedError


class TopK(Selector):
    """The ``k`` highest scores (earliest first among equal scores).

    Examples
    --------
    >>> b = Batch(np.array([0.1, 0.9, 0.5, 0.9]), np.zeros((4, 1)), np.zeros((0, 1)))
    >>> TopK().select(b, 2, np.random.default_rng(0))
    [1, 3]
    """

    def select(self, batch: Batch, k: int, rng: np.random.Generator) -> list[int]:
        order = np.argsort(-batch.scores, kind="stable")
        return sorted(int(i) for i in order[:k])


def _min_dist(vectors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    if not len(centres):
        return np.full(len(vectors), np.inf)
    sq = (
        np.einsum("ij,ij->i", vectors, vectors)[:, None]
        + np.einsum("ij,ij->i", centres, centres)[None, :]
        - 2.0 * vectors @ centres.T
    )
    out: np.ndarray = np.sqrt(np.maximum(sq.min(axis=1), 0.0))
    return out


def _greedy(batch: Batch, k: int, weight: float) -> list[int]:
    """Pick one by one the arrival maximizing ``weight·score + (1 − weight)·spread``,
    where spread is the distance to the nearest labelled or picked sample, relative to
    the largest such distance."""
    dist = _min_dist(batch.vectors, batch.centres)
    chosen: list[int] = []
    free = np.ones(len(batch.scores), dtype=bool)
    for _ in range(min(k, len(free))):
        finite = np.isfinite(dist)
        top = dist[finite & free].max() if (finite & free).any() else 0.0
        spread = np.where(finite, dist / top if top > 0 else 0.0, 1.0)
        value = weight * batch.scores + (1.0 - weight) * spread
        value[~free] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        free[pick] = False
        dist = np.minimum(dist, _min_dist(batch.vectors, batch.vectors[pick : pick + 1]))
    return sorted(chosen)


class CoreSet(Selector):
    """k-center greedy in feature space: cover the window, far from what is labelled.

    The first pick is the arrival farthest from the recently labelled samples (the
    highest score when nothing is labelled yet); each next pick is the arrival farthest
    from everything labelled or picked.

    Examples
    --------
    >>> v = np.array([[0.0], [0.1], [5.0], [10.0]])
    >>> b = Batch(np.zeros(4), v, centres=np.array([[0.0]]))
    >>> CoreSet().select(b, 2, np.random.default_rng(0))
    [2, 3]
    """

    def select(self, batch: Batch, k: int, rng: np.random.Generator) -> list[int]:
        return _greedy(batch, k, weight=1e-9)


class Diverse(Selector):
    """Uncertainty plus diversity: a greedy trade-off between score and spread.

    Parameters
    ----------
    weight
        Weight of the score; ``1 − weight`` goes to the distance from labelled and
        already picked arrivals (relative to the largest).

    Examples
    --------
    >>> v = np.array([[0.0], [0.01], [3.0]])
    >>> b = Batch(np.array([1.0, 0.99, 0.6]), v, centres=np.zeros((0, 1)))
    >>> Diverse().select(b, 2, np.random.default_rng(0))  # not the two near-twins
    [0, 2]
    """

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = weight

    def select(self, batch: Batch, k: int, rng: np.random.Generator) -> list[int]:
        return _greedy(batch, k, weight=self.weight)


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    out: np.ndarray = -(p * np.log(p)).sum(axis=-1)
    return out


class BatchBALD(Selector):
    """Greedy BatchBALD: the batch with the most joint mutual information with the model.

    The ensemble members play posterior samples. Each step adds the arrival that
    maximizes ``H(y_batch, y) − E_member H(y | member)``; the joint entropy is computed
    exactly over all label configurations while there are at most ``max_configs`` of
    them, and estimated from ``samples`` sampled configurations beyond (Kirsch et al.,
    2019, section 3.3), with the window's seeded generator.

    Parameters
    ----------
    max_configs
        Largest number of joint label configurations enumerated exactly.
    samples
        Number of sampled configurations once enumeration is too large.

    Examples
    --------
    >>> a = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]  # members 1, 3 vs 2, 4
    >>> b = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]  # members 1, 2 vs 3, 4
    >>> batch = Batch(np.zeros(3), np.zeros((3, 1)), np.zeros((0, 1)), np.array([a, a, b]))
    >>> BatchBALD().select(batch, 2, np.random.default_rng(0))  # not the same question twice
    [0, 2]
    """

    needs_members = True

    def __init__(self, max_configs: int = 1024, samples: int = 256) -> None:
        self.max_configs = max_configs
        self.samples = samples

    def select(self, batch: Batch, k: int, rng: np.random.Generator) -> list[int]:
        if batch.members is None:
            raise ValueError("BatchBALD needs the ensemble members' posteriors")
        p = np.clip(batch.members, 1e-12, None)
        p = p / p.sum(axis=-1, keepdims=True)
        n, m, _ = p.shape
        conditional = _entropy_rows(p).mean(axis=1)
        joint = np.ones((m, 1))  # member likelihoods of each configuration (scaled)
        log_scale = np.zeros(1)  # log of each column's scale
        exact = True
        free = np.ones(n, dtype=bool)
        chosen: list[int] = []
        for _ in range(min(k, n)):
            gain = np.full(n, -np.inf)
            prior = joint.mean(axis=0)  # scaled P(configuration)
            log_prior = np.log(prior) + log_scale
            weight = np.exp(log_prior) if exact else np.full(len(prior), 1.0 / len(prior))
            for i in np.flatnonzero(free):
                cond = (joint.T @ p[i]) / m / prior[:, None]  # P(y_i | configuration)
                cond = np.clip(cond, 1e-300, None)
                h = -(weight[:, None] * cond * (np.log(cond) + log_prior[:, None])).sum()
                gain[i] = h - conditional[i]
            pick = int(np.argmax(gain))
            chosen.append(pick)
            free[pick] = False
            joint, log_scale, exact = self._extend(joint, log_scale, exact, p[pick], rng)
        return sorted(chosen)

    def _extend(
        self,
        joint: np.ndarray,
        log_scale: np.ndarray,
        exact: bool,
        probs: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Add one arrival's label to the configurations (enumerate or sample)."""
        m, s = joint.shape
        c = probs.shape[1]
        if exact and s * c <= self.max_configs:
            new = (joint[:, :, None] * probs[:, None, :]).reshape(m, s * c)
            scale = np.repeat(log_scale, c)
        else:
            if exact:  # switch to sampling: draw configurations by their probability
                prior = joint.mean(axis=0) * np.exp(log_scale - log_scale.max())
                rows = rng.choice(s, size=self.samples, p=prior / prior.sum())
                joint, log_scale = joint[:, rows], log_scale[rows]
            cond = joint.T @ probs  # unnormalized P(y | configuration)
            cond /= cond.sum(axis=1, keepdims=True)
            u = rng.random(len(cond))[:, None]
            labels = np.minimum((cond.cumsum(axis=1) < u).sum(axis=1), c - 1)
            new = joint * probs[:, labels]
            scale = log_scale
            exact = False
        top = new.max(axis=0)
        top[top <= 0.0] = 1.0
        return new / top, scale + np.log(top), exact
