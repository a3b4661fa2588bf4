"""How ``streamal annotate`` shows a query: features, prediction and class probabilities."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from streamal.messages import Query

__all__ = ["render_query"]

#: Features shown per query; wider samples are cut (the count of the rest is shown).
MAX_FEATURES = 40
#: Classes shown with their probability, most likely first.
MAX_CLASSES = 5


def render_query(query: Query) -> Panel:
    """A rich panel for one query.

    Examples
    --------
    >>> from rich.console import Console
    >>> q = Query(sample_id="42", x={"age": 31, "city": "Oslo"}, proba={"yes": 0.7, "no": 0.3},
    ...           prediction="yes", score=0.88, strategy="entropy", model_version=5)
    >>> console = Console(width=60, color_system=None)
    >>> with console.capture() as cap:
    ...     console.print(render_query(q))
    >>> text = cap.get()
    >>> "sample 42" in text and "Oslo" in text and "0.700" in text
    True
    """
    features = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    features.add_column("feature")
    features.add_column("value", overflow="fold")
    items = list(query.x.items())
    for name, value in items[:MAX_FEATURES]:
        features.add_row(str(name), f"{value:.4g}" if isinstance(value, float) else str(value))
    if len(items) > MAX_FEATURES:
        features.add_row("…", f"{len(items) - MAX_FEATURES} more")
    classes = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    classes.add_column("class")
    classes.add_column("probability", justify="right")
    ranked = sorted(query.proba.items(), key=lambda kv: -kv[1])[:MAX_CLASSES]
    for name, p in ranked:
        classes.add_row(name, f"{p:.3f}")
    head = (
        f"prediction [bold]{query.prediction}[/bold] · score {query.score:.3f} "
        f"({query.strategy}) · {query.purpose}"
    )
    title = f"sample {query.sample_id} · model v{query.model_version}"
    return Panel(Group(head, features, classes), title=title, title_align="left")
