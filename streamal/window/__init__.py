"""Window (batch) mode: buffer arrivals, then choose which of them to label at once.

The selectors are registered beside the strategies and budget managers, in
:mod:`streamal.core.registry`; ``SELECTORS`` and ``make_selector`` are also here.
"""

from streamal.core.registry import SELECTORS, make_selector
from streamal.window.learner import WindowLearner

__all__ = ["SELECTORS", "WindowLearner", "make_selector"]
