"""People label: the rules for labels from people, labels over HTTP, a labelling page.

Three ways in, all ending on the labels topic (Kafka stays the one path to the learner,
so the service's crash safety holds unchanged):

- :mod:`~streamal.labelling.web`: ``GET /label`` on the service's HTTP port, a page
  that shows the open queries and takes one click or key per label;
- :mod:`~streamal.labelling.gateway`: ``POST /labels`` with one label or a list;
- :mod:`~streamal.labelling.label_studio`: a bridge that turns queries into Label Studio
  tasks and their annotations into labels.

:mod:`~streamal.labelling.policy` says which classes an annotator is offered and which
labels are taken. ``docs/labelling.md`` explains all of it.
"""

from streamal.labelling.policy import LabelPolicy

__all__ = ["LabelPolicy"]
