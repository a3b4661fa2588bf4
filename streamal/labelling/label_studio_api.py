"""A small client of Label Studio's REST API (the calls the bridge needs), on urllib.

Authentication is Label Studio's *legacy token* (``Authorization: Token ...``, Account &
Settings → Legacy Token; it must be enabled for the organization). Label Studio's
answers are JSON; an HTTP error or a connection failure raises
:class:`~streamal.exceptions.TransportError` naming the call.

Examples
--------
>>> print(label_config(["spam", "ham"]))
<View>
  <Header value="Sample $sample_id"/>
  <Text name="item" value="$item"/>
  <Choices name="label" toName="item" choice="single" showInline="true">
    <Choice value="spam"/>
    <Choice value="ham"/>
  </Choices>
</View>
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from streamal.exceptions import TransportError

__all__ = ["LabelStudioClient", "choice_name", "label_config"]

#: Names in the labelling config that tasks, predictions and annotations refer to.
FROM_NAME, TO_NAME = "label", "item"


def choice_name(y: Any) -> str:
    """How class ``y`` is spelled as a Label Studio choice (Python's ``str``)."""
    return str(y)


def label_config(classes: Sequence[Any]) -> str:
    """The labelling config for a query: its sample id, its item text, one choice per class."""
    choices = "\n".join(f"    <Choice value={quoteattr(choice_name(c))}/>" for c in classes)
    return (
        "<View>\n"
        '  <Header value="Sample $sample_id"/>\n'
        f'  <Text name="{TO_NAME}" value="$item"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


class LabelStudioClient:
    """Calls Label Studio at ``url`` with a legacy ``token``.

    Parameters
    ----------
    url
        Base address, e.g. ``http://localhost:8080``.
    token
        The legacy API token.
    timeout
        Seconds per call (30: an import into a large project can take a while).
    """

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; the decoded JSON answer (``None`` for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self._token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode(errors="replace")
            raise TransportError(f"Label Studio {method} {path}: {err.code} {detail}") from None
        except (OSError, ValueError) as err:
            raise TransportError(f"Label Studio {method} {path}: {err}") from None
        return json.loads(text) if text.strip() else None

    def project(self, project: int) -> dict[str, Any]:
        """The project's settings (``label_config``, ``title``, ...)."""
        answer: dict[str, Any] = self.call("GET", f"/api/projects/{project}/")
        return answer

    def set_label_config(self, project: int, config: str) -> None:
        """Replace the project's labelling config."""
        self.call("PATCH", f"/api/projects/{project}/", {"label_config": config})

    def create_task(self, project: int, data: dict[str, Any]) -> int:
        """Create one task; return its id."""
        task = self.call("POST", "/api/tasks/", {"project": project, "data": data})
        return int(task["id"])

    def create_prediction(
        self, task: int, result: list[dict[str, Any]], score: float, model_version: str
    ) -> None:
        """Attach a pre-annotation (a prediction with its score) to a task."""
        body = {"task": task, "result": result, "score": score, "model_version": model_version}
        self.call("POST", "/api/predictions/", body)

    def tasks(self, project: int, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every task of the project with its annotations, page by page."""
        page = 1
        while True:
            path = f"/api/tasks/?project={project}&page={page}&page_size={page_size}&fields=all"
            try:
                answer = self.call("GET", path)
            except TransportError as err:
                if " 404 " in str(err):  # past the last page
                    return
                raise
            tasks = answer.get("tasks", []) if isinstance(answer, dict) else answer
            yield from tasks
            if len(tasks) < page_size:
                return
            page += 1

    def annotations(self, task: int) -> list[dict[str, Any]]:
        """The annotations of one task."""
        answer: list[dict[str, Any]] = self.call("GET", f"/api/tasks/{task}/annotations/")
        return answer

    def create_annotation(self, task: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """Annotate a task (what a person does in the editor; used by tests and demos)."""
        answer: dict[str, Any] = self.call(
            "POST", f"/api/tasks/{task}/annotations/", {"result": result}
        )
        return answer

    def update_annotation(self, annotation: int, result: list[dict[str, Any]]) -> None:
        """Change an annotation's result."""
        self.call("PATCH", f"/api/annotations/{annotation}/", {"result": result})

    def add_webhook(self, project: int, url: str) -> int:
        """Ask Label Studio to POST created and updated annotations to ``url``."""
        body = {
            "project": project,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": ["ANNOTATION_CREATED", "ANNOTATION_UPDATED"],
            "is_active": True,
        }
        return int(self.call("POST", "/api/webhooks/", body)["id"])

    def webhooks(self, project: int) -> list[dict[str, Any]]:
        """The project's webhooks."""
        answer: list[dict[str, Any]] = self.call("GET", f"/api/webhooks/?project={project}")
        return answer


def choices_result(y: Any) -> list[dict[str, Any]]:
    """An annotation or prediction result choosing class ``y``."""
    value = {"choices": [choice_name(y)]}
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": value}]
