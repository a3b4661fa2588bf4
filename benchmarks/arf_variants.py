"""ARF and Hoeffding tree configurations screened for sparse labels (issue 15), as
``module:attr`` model specs.

``python benchmarks/selection.py --models arf_variants:g20 ...`` builds the forest of
``g20()`` below (``benchmarks/`` is on ``sys.path`` there). Each factory is the
registered ``arf`` (river's ``ARFClassifier``, 10 trees, seed 1 as the suite's runs)
with one or two parameters changed; the suite's model seed is 1, so the forests differ
only in the parameters.
"""

from __future__ import annotations

from typing import Any

from river import drift, forest, tree

SEED = 1


def _arf(**kw: Any) -> forest.ARFClassifier:
    return forest.ARFClassifier(**({"n_models": 10, "seed": SEED} | kw))


def base() -> forest.ARFClassifier:
    """The registered model (check: must equal ``arf``)."""
    return _arf()


def g20() -> forest.ARFClassifier:
    """Grace period 20 (river: 50): trees try a split after fewer labels."""
    return _arf(grace_period=20)


def g10() -> forest.ARFClassifier:
    """Grace period 10."""
    return _arf(grace_period=10)


def g100() -> forest.ARFClassifier:
    """Grace period 100."""
    return _arf(grace_period=100)


def lam1() -> forest.ARFClassifier:
    """Poisson(1) resampling (plain online bagging; river: 6)."""
    return _arf(lambda_value=1)


def lam3() -> forest.ARFClassifier:
    """Poisson(3) resampling."""
    return _arf(lambda_value=3)


def n20() -> forest.ARFClassifier:
    """20 trees."""
    return _arf(n_models=20)


def n5() -> forest.ARFClassifier:
    """5 trees."""
    return _arf(n_models=5)


def nodrift() -> forest.ARFClassifier:
    """No drift or warning detection (no tree is ever replaced)."""
    return _arf(drift_detector=drift.NoDrift(), warning_detector=drift.NoDrift())


def adwin_loose() -> forest.ARFClassifier:
    """ADWIN detectors 10x less sensitive (drift 1e-4, warning 1e-3; river: 1e-3, 1e-2)."""
    return _arf(drift_detector=drift.ADWIN(delta=1e-4), warning_detector=drift.ADWIN(delta=1e-3))


def delta05() -> forest.ARFClassifier:
    """Split confidence 0.05 (river: 0.01): splits on less evidence."""
    return _arf(delta=0.05)


def g20_delta05() -> forest.ARFClassifier:
    """Grace period 20 and split confidence 0.05."""
    return _arf(grace_period=20, delta=0.05)


# -- the single Hoeffding tree (registered ``hoeffding``: river's defaults, grace period
# 200, so at rate 0.05 on 2,000 arrivals, 100 labels, it never tries a split) ----------
def _ht(**kw: Any) -> tree.HoeffdingTreeClassifier:
    return tree.HoeffdingTreeClassifier(**kw)


def ht_base() -> tree.HoeffdingTreeClassifier:
    """The registered model (check: must equal ``hoeffding``)."""
    return _ht()


def ht_g50() -> tree.HoeffdingTreeClassifier:
    """Grace period 50 (river: 200), ARF's."""
    return _ht(grace_period=50)


def ht_g20() -> tree.HoeffdingTreeClassifier:
    """Grace period 20."""
    return _ht(grace_period=20)


def ht_g50_delta05() -> tree.HoeffdingTreeClassifier:
    """Grace period 50, split confidence 0.05 (river: 1e-7)."""
    return _ht(grace_period=50, delta=0.05)


def ht_hat() -> tree.HoeffdingAdaptiveTreeClassifier:
    """Hoeffding adaptive tree (registered ``hat``), seed 1."""
    return tree.HoeffdingAdaptiveTreeClassifier(seed=SEED)


def n20_lam3() -> forest.ARFClassifier:
    """20 trees, Poisson(3) resampling."""
    return _arf(n_models=20, lambda_value=3)
