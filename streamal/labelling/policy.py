"""Which classes a query offers and which labels are taken (:class:`LabelPolicy`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamal.messages import MAX_QUERY_META_BYTES

__all__ = ["LabelPolicy"]


@dataclass(frozen=True)
class LabelPolicy:
    """The classes offered to annotators, the ``meta`` a query carries, unsolicited labels.

    Parameters
    ----------
    classes
        The labels the stream may carry. When set, every query offers exactly these and
        a label outside them is refused (a dead letter with reason ``unknown_class``, or a
        refusal in the ``POST /labels`` answer). ``None``: queries offer the classes the
        model knows so far (those it gives probabilities for; a model that can grow
        adds a class when it learns one), and any label is taken.
    meta_bytes
        A query carries at most this much of its sample's ``meta`` as JSON
        (:func:`~streamal.messages.bound_meta`).
    unsolicited
        Learn labels that carry their features for samples never queried
        (:meth:`~streamal.core.learner.ActiveLearner.learn_unsolicited`).

    Examples
    --------
    >>> policy = LabelPolicy(classes=("spam", "ham"))
    >>> policy.refuse("ham") is None, policy.refuse("eggs")
    (True, "label 'eggs' is not among the classes ['spam', 'ham']")
    >>> LabelPolicy(classes=(True, False)).refuse(1)  # 1 is not True on the wire
    'label 1 is not among the classes [True, False]'
    >>> LabelPolicy().refuse("anything") is None
    True
    """

    classes: tuple[Any, ...] | None = None
    meta_bytes: int = MAX_QUERY_META_BYTES
    unsolicited: bool = False
    _keys: frozenset[tuple[type, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.classes is not None:
            keys = frozenset((type(c), c) for c in self.classes)
            object.__setattr__(self, "_keys", keys)

    @classmethod
    def build(
        cls, classes: Sequence[Any] | None, meta_bytes: int, unsolicited: bool
    ) -> LabelPolicy:
        """A policy from settings values (``classes`` as a list or ``None``)."""
        return cls(None if classes is None else tuple(classes), meta_bytes, unsolicited)

    @property
    def offered(self) -> list[Any] | None:
        """The classes every query offers, or ``None`` for the model's own."""
        return None if self.classes is None else list(self.classes)

    def refuse(self, y: Any) -> str | None:
        """Why label ``y`` is refused, or ``None`` if it may be learned."""
        keys = self._keys
        if keys is None or (type(y), y) in keys:
            return None
        return f"label {y!r} is not among the classes {list(self.classes or ())!r}"
