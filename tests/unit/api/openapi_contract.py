"""The platform's published OpenAPI document, and the rule that it only grows.

``baseline.json`` beside this file is the document as released. A change may add paths,
operations, optional parameters, schemas and properties; it may not remove or rename any of
them, change a property's type, make an optional parameter required, or require a new field
in a request body. After an intended addition, write the new baseline:

    .venv/bin/python -m tests.unit.api.openapi_contract --write
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

BASELINE = Path(__file__).with_name("data") / "openapi_baseline.json"
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def current_document(tmp: Path) -> dict[str, Any]:
    """The full ingress (platform routes and every mounted area) as the platform serves it."""
    from tests.unit.api.support import make_harness

    return make_harness(tmp, mount_areas=True).app.openapi()


def _kind(schema: dict[str, Any]) -> Any:
    """What a property is, for the comparison: its type (or reference, or union of them)."""
    if "$ref" in schema:
        return schema["$ref"]
    if "anyOf" in schema:
        return sorted(json.dumps(_kind(s), sort_keys=True) for s in schema["anyOf"])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _kind(schema["allOf"][0])
    return schema.get("type")


def _request_schemas(doc: dict[str, Any]) -> set[str]:
    out = set()
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            for media in (op.get("requestBody") or {}).get("content", {}).values():
                ref = (media.get("schema") or {}).get("$ref", "")
                if ref:
                    out.add(ref.rsplit("/", 1)[-1])
    return out


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every way ``new`` is not ``old`` plus additions (empty when it only grew)."""
    problems: list[str] = []
    for path, ops in old.get("paths", {}).items():
        now = new.get("paths", {}).get(path)
        if now is None:
            problems.append(f"path removed: {path}")
            continue
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            if method not in now:
                problems.append(f"operation removed: {method.upper()} {path}")
                continue
            params = {(p["name"], p["in"]): p for p in now[method].get("parameters", [])}
            for p in op.get("parameters", []):
                q = params.get((p["name"], p["in"]))
                if q is None:
                    problems.append(f"parameter removed: {method.upper()} {path} {p['in']} {p['name']}")
                elif q.get("required") and not p.get("required"):
                    problems.append(f"parameter now required: {method.upper()} {path} {p['name']}")
            for extra, q in params.items():
                if q.get("required") and extra not in {(p["name"], p["in"]) for p in op.get("parameters", [])}:
                    problems.append(f"new required parameter: {method.upper()} {path} {extra[0]}")
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    requests = _request_schemas(new)
    for name, schema in old_schemas.items():
        now = new_schemas.get(name)
        if now is None:
            problems.append(f"schema removed: {name}")
            continue
        props_now = now.get("properties", {})
        for prop, spec in schema.get("properties", {}).items():
            if prop not in props_now:
                problems.append(f"property removed: {name}.{prop}")
            elif _kind(props_now[prop]) != _kind(spec):
                problems.append(f"property type changed: {name}.{prop}")
        if name in requests:
            added = set(now.get("required", [])) - set(schema.get("required", []))
            if added:
                problems.append(f"request {name} now requires {sorted(added)}")
    return problems


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        doc = current_document(Path(tmp))
    BASELINE.parent.mkdir(parents=True, exist_ok=True)
    BASELINE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {BASELINE} ({len(doc['paths'])} paths)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
