"""Vendor the OpenAI component schemas the data plane's /openapi.json refers to.

    .venv/bin/python scripts/vendor_openai_schemas.py

reads OpenAI's OpenAPI description kept for the tests (tests/specs/openai-openapi.yaml), takes
the component schemas the data plane's operations name (OPENAI_SCHEMAS in
hydite_dataplane.openapi.operations) and every schema they refer to, drops what only documents
(descriptions below a schema's root, examples, titles, defaults, x-oai* extensions), and writes them as
compact JSON into the data plane package, with the spec's licence beside them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from hydite_dataplane.openapi.operations import OPENAI_SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/specs/openai-openapi.yaml"
SPEC_LICENSE = ROOT / "tests/specs/openai-openapi.LICENSE"
PACKAGE = ROOT / "services/dataplane/src/hydite_dataplane/openapi"
TARGET = PACKAGE / "openai_components.json"
TARGET_LICENSE = PACKAGE / "openai-openapi.LICENSE"

INT64_LIMIT = 2**63
_REF = re.compile(r'"#/components/schemas/([^"]+)"')
# `default` documents what OpenAI does when a field is left out (the gateway passes on what the
# client sent), and some of the spec's defaults break their own schema; `$recursiveAnchor` is a
# 2019-09 keyword that JSON Schema 2020-12 (OpenAPI 3.1) no longer has.
_DOCUMENTATION_ONLY = frozenset({"example", "examples", "title", "deprecated", "default", "$recursiveAnchor"})


def referenced(schemas: dict[str, Any], roots: set[str]) -> set[str]:
    """roots and every component schema they refer to, directly or not."""
    seen: set[str] = set()
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += _REF.findall(json.dumps(schemas[name]))
    return seen


def trimmed(schema: Any, *, root: bool = False) -> Any:
    """schema without documentation-only keywords (`properties` keeps every property name),
    integers clamped to 64 bits."""
    if isinstance(schema, list):
        return [trimmed(item) for item in schema]
    if isinstance(schema, int) and not isinstance(schema, bool):
        # A bound such as seed's 9223372036854776000 (a float rounded) becomes the int64 it means,
        # so orjson can read the file.
        return max(-INT64_LIMIT, min(INT64_LIMIT - 1, schema))
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            kept[key] = {name: trimmed(child) for name, child in value.items()}
        elif key in _DOCUMENTATION_ONLY or key.startswith("x-oai") or (key == "description" and not root):
            continue
        else:
            kept[key] = trimmed(value)
    return kept


def vendor() -> int:
    """Write the trimmed schemas; their size in bytes."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open() as handle:
        spec = yaml.load(handle, Loader=loader)
    schemas: dict[str, Any] = spec["components"]["schemas"]
    names = referenced(schemas, set(OPENAI_SCHEMAS))
    subset = {name: trimmed(schemas[name], root=True) for name in sorted(names)}
    payload = json.dumps(subset, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    TARGET.write_bytes(payload)
    shutil.copyfile(SPEC_LICENSE, TARGET_LICENSE)
    return len(payload)


if __name__ == "__main__":
    vendor()
