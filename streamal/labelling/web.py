"""The labelling routes of the service's HTTP port: a page, its data, ``POST /labels``.

=================== ===================================================================
``GET /label``      the labelling page (HTML and a little JavaScript, no build step)
``GET /label/data`` the open queries and the live counts, as JSON (token if configured)
``POST /labels``    labels (:mod:`streamal.labelling.gateway`)
=================== ===================================================================

The page shows the oldest open query: its features, its ``meta`` (links open in a new
tab), the model's guess and confidence, and one button per class; keys ``1``-``9`` pick
a class, ``s`` skips. The header counts the queries waiting, the labels given today,
and the budget spent against its target. With ``labelling.token`` set, the page asks for
the token once and keeps it for the browser tab (``sessionStorage``).

Examples
--------
>>> from streamal.transports import MemoryBroker, MemorySink
>>> from streamal.labelling.board import QueryBoard
>>> from streamal.labelling.gateway import LabelGateway
>>> app = LabellingApp(
...     LabelGateway(MemorySink(MemoryBroker()), "streamal.labels"), QueryBoard(), dict
... )
>>> code, body, kind = app("GET", "/label", {}, b"")
>>> code, kind, b"<title>streamal" in body
(200, 'text/html; charset=utf-8', True)
>>> app("GET", "/label/data", {}, b"")[1]
b'{"queries":[],"counts":{"pending_on_page":0,"labelled_today":0}}'
>>> app("GET", "/nowhere", {}, b"") is None
True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from streamal.labelling.board import QueryBoard
from streamal.labelling.gateway import LabelGateway
from streamal.labelling.page import PAGE

__all__ = ["LabellingApp", "Reply"]

#: Status code, body, content type.
Reply = tuple[int, bytes, str]
_JSON = "application/json"


class LabellingApp:
    """Routes ``/label``, ``/label/data`` and ``POST /labels`` (``None`` for other paths).

    Parameters
    ----------
    gateway
        Checks and writes posted labels.
    board
        The open queries.
    counts
        Live counts for the page's header (e.g. ``pending``, ``spent``, ``target``).
    title
        The page's title.
    """

    def __init__(
        self,
        gateway: LabelGateway,
        board: QueryBoard,
        counts: Callable[[], Mapping[str, Any]],
        title: str = "streamal labelling",
    ) -> None:
        self.gateway = gateway
        self.board = board
        self.counts = counts
        self.title = title
        gateway.on_accepted = board.answered

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Reply | None:
        """Answer a request, or ``None`` if the path is not one of these routes."""
        path = path.split("?", 1)[0]
        if method == "POST" and path == "/labels":
            code, answer = self.gateway.post(body, headers.get("Authorization"))
            return code, _dumps(answer), _JSON
        if method == "GET" and path in ("/label", "/label/"):
            html = PAGE.replace("{{title}}", self.title)
            return 200, html.encode(), "text/html; charset=utf-8"
        if method == "GET" and path == "/label/data":
            if not self.gateway.authorized(headers.get("Authorization")):
                return 401, _dumps({"error": "a bearer token is required"}), _JSON
            return 200, _dumps(self.data()), _JSON
        return None

    def data(self, limit: int = 50) -> dict[str, Any]:
        """The page's data: open queries (oldest first) and the counts."""
        queries = self.board.open(limit)
        counts = {"pending_on_page": len(self.board), "labelled_today": 0, **self.counts()}
        counts["labelled_today"] = self.gateway.labelled_today
        return {"queries": queries, "counts": counts}


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
