"""GitHub's own published descriptions, used as test oracles.

* ``@octokit/openapi``: the REST API description. `RestSpec.check` says whether
  a request the bot sent names a real operation and carries a valid body.
* ``@octokit/openapi-webhooks``: the webhook payload schemas. `WebhookSpec`
  validates payloads that tests build themselves.
* ``@octokit/webhooks-examples``: real payloads GitHub sent, to drive the server.

Installed by ``ci/install-deps.sh`` (``npm ci`` in tests/npm).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

OCTOKIT = Path(__file__).resolve().parents[1] / "npm" / "node_modules" / "@octokit"
REST_SPEC = OCTOKIT / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_SPEC = OCTOKIT / "openapi-webhooks" / "generated" / "api.github.com.json"
WEBHOOK_EXAMPLES = OCTOKIT / "webhooks-examples" / "api.github.com" / "index.json"

_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    pointer: str  # JSON pointer of the operation object in the spec

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class RestSpec:
    """Operations of the REST description, matched by method and concrete path."""

    def __init__(self, path: Path = REST_SPEC) -> None:
        self.doc: dict[str, Any] = json.loads(path.read_text())
        self.registry: Registry = Registry().with_resource(
            "urn:github-rest", Resource.from_contents(self.doc, default_specification=DRAFT4)
        )
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method in item:
                if method in ("get", "post", "patch", "put", "delete"):
                    self.operations.append(
                        Operation(method, template, rx, f"/paths/{_escape(template)}/{method}")
                    )
        # Literal paths win over templated ones (/repos/o/r/pulls/comments vs /pulls/{n}).
        self.operations.sort(key=lambda op: op.template.count("{"))

    def find(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.lower() and op.regex.match(path):
                return op
        return None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ptr = node["$ref"].lstrip("#")
            node = self.doc
            for part in ptr.strip("/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def check(
        self, method: str, path: str, query: dict[str, list[str]], body: Any | None
    ) -> tuple[str | None, list[str]]:
        """(operation name, problems) for one request; no operation → name None."""
        op = self.find(method, path)
        if op is None:
            return None, [f"{method} {path}: no such operation in GitHub's REST description"]
        problems: list[str] = []
        spec_op = self._resolve({"$ref": "#" + op.pointer})
        for ref in spec_op.get("parameters", []):
            param = self._resolve(ref)
            if param.get("in") == "query" and param.get("required") and param["name"] not in query:
                    problems.append(f"{op.name}: required query parameter {param['name']} missing")
        known_query = {
            self._resolve(p)["name"]
            for p in spec_op.get("parameters", [])
            if self._resolve(p).get("in") == "query"
        }
        for q in query:
            if q not in known_query:
                problems.append(f"{op.name}: unknown query parameter {q!r}")
        rb = spec_op.get("requestBody")
        if body is None:
            if rb and self._resolve(rb).get("required"):
                problems.append(f"{op.name}: request body required")
            return op.name, problems
        if not rb:
            problems.append(f"{op.name}: takes no request body")
            return op.name, problems
        pointer = f"urn:github-rest#{op.pointer}/requestBody/content/application~1json/schema"
        if "$ref" in rb:
            pointer = (
                "urn:github-rest#" + rb["$ref"].lstrip("#") + "/content/application~1json/schema"
            )
        validator = jsonschema.Draft4Validator(
            {"$ref": pointer}, registry=self.registry, format_checker=_formats
        )
        for err in validator.iter_errors(body):
            where = "/".join(str(p) for p in err.absolute_path) or "(body)"
            problems.append(f"{op.name}: body {where}: {err.message[:300]}")
        return op.name, problems


    def check_error(
        self, method: str, path: str, status: int, payload: Any
    ) -> list[str]:
        """Problems with an error answer (status >= 400) the fake gives: it must match the
        operation's documented error schema for that status (``validation-error`` for 422,
        ``basic-error`` otherwise) and, as GitHub's do, carry ``message`` and
        ``documentation_url``."""
        op = self.find(method, path)
        if op is None or status < 400:
            return []
        where = f"{op.name} answer {status}"
        if not isinstance(payload, dict) or not {"message", "documentation_url"} <= set(payload):
            return [f"{where}: error body lacks message/documentation_url: {payload!r:.200}"]
        spec_op = self._resolve({"$ref": "#" + op.pointer})
        resp = spec_op.get("responses", {}).get(str(status))
        schema_ref = "#/components/schemas/" + (
            "validation-error" if status == 422 else "basic-error"
        )
        if resp is not None:
            content = self._resolve(resp).get("content", {}).get("application/json")
            if content and "$ref" in content.get("schema", {}):
                schema_ref = content["schema"]["$ref"]
        validator = jsonschema.Draft4Validator(
            {"$ref": "urn:github-rest" + schema_ref}, registry=self.registry
        )
        return [f"{where}: {e.message[:300]}" for e in validator.iter_errors(payload)]


class WebhookSpec:
    """Webhook payload schemas, keyed like ``issue-comment-created``."""

    def __init__(self, path: Path = WEBHOOK_SPEC) -> None:
        self.doc: dict[str, Any] = json.loads(path.read_text())
        self.registry: Registry = Registry().with_resource(
            "urn:github-webhooks",
            Resource.from_contents(self.doc, default_specification=DRAFT202012),
        )

    def errors(self, event: str, action: str | None, payload: dict[str, Any]) -> list[str]:
        name = event.replace("_", "-") + (f"-{action.replace('_', '-')}" if action else "")
        if name not in self.doc["webhooks"]:
            return [f"no webhook schema named {name}"]
        ptr = (
            f"urn:github-webhooks#/webhooks/{name}/post/requestBody"
            "/content/application~1json/schema"
        )
        v = jsonschema.Draft202012Validator({"$ref": ptr}, registry=self.registry)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in v.iter_errors(payload)
        ]


@functools.cache
def rest_spec() -> RestSpec:
    return RestSpec()


@functools.cache
def webhook_spec() -> WebhookSpec:
    return WebhookSpec()


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(WEBHOOK_EXAMPLES.read_text())
    return {entry["name"]: entry["examples"] for entry in data}


def examples(event: str, action: str | None = None) -> Iterator[dict[str, Any]]:
    """Real payloads GitHub sent for ``event`` (and ``action``), as published by octokit."""
    for ex in _examples().get(event, []):
        if action is None or ex.get("action") == action:
            yield json.loads(json.dumps(ex))  # a fresh copy tests may change
