"""A small JSON Schema checker for the OpenAPI document's schemas (``jsonschema`` is not a
dependency): the keywords ``oms.api.schemas`` uses, ``$ref`` into the document, and a refusal of
any other keyword, so a schema that grows a new one cannot pass unchecked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ANNOTATIONS = frozenset({"examples", "description", "title"})
_KEYWORDS = frozenset({
    "$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
    "pattern", "format", "oneOf", "anyOf", "allOf", "minimum", "maximum", "minLength",
    "maxLength",
}) | _ANNOTATIONS  # fmt: skip


def problems(value: Any, schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty: it validates), each with its JSON path."""
    found: list[str] = []
    _check(value, schema, document, "$", found)
    return found


def _resolve(reference: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference[2:].split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def _check(  # noqa: PLR0912 - one branch per keyword reads best as a list
    value: Any, schema: Mapping[str, Any], document: Mapping[str, Any], path: str, out: list[str]
) -> None:
    unknown = set(schema) - _KEYWORDS
    assert not unknown, f"{path}: the checker does not know {sorted(unknown)}"
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], document), document, path, out)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[kind](value) for kind in kinds):
            out.append(f"{path}: {value!r} is not of type {kinds}")
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                out.append(f"{path}: {value!r} is not a date-time")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: longer than {schema['maxLength']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        _check_object(value, schema, document, path, out)
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            _check(item, schema["items"], document, f"{path}[{n}]", out)
    for part in schema.get("allOf", ()):
        _check(value, part, document, path, out)
    if "anyOf" in schema and not any(
        not problems(value, part, document) for part in schema["anyOf"]
    ):
        out.append(f"{path}: {value!r} matches none of anyOf")
    if "oneOf" in schema:
        matching = sum(1 for part in schema["oneOf"] if not problems(value, part, document))
        if matching != 1:
            out.append(f"{path}: {value!r} matches {matching} of oneOf, not exactly one")


def _check_object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    document: Mapping[str, Any],
    path: str,
    out: list[str],
) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            out.append(f"{path}: {name!r} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], document, f"{path}.{name}", out)
        elif extra is False:
            out.append(f"{path}: {name!r} is not allowed")
        elif isinstance(extra, dict):
            _check(item, extra, document, f"{path}.{name}", out)
