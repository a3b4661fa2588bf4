"""Window (batch) mode: buffer arrivals, then choose which of them to label at once."""

from streamal.window.learner import SELECTORS, WindowLearner, make_selector

__all__ = ["SELECTORS", "WindowLearner", "make_selector"]
