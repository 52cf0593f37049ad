"""OpenAI's OpenAPI spec as a validator: responses are checked against its component schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema.validators import extend  # type: ignore[import-untyped]
from openapi_schema_validator import OAS31Validator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent / "specs" / "openai-openapi.yaml"
SPEC_URI = "urn:openai-openapi"
Check = Callable[[Any, str], None]


def _honouring_nullable(keyword: Any) -> Any:
    """Wrap a JSON Schema keyword so that `nullable: true` lets null through, as OpenAPI 3.0 meant."""

    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if instance is None and schema.get("nullable") is True:
            return
        yield from keyword(validator, value, instance, schema)

    return check


# The spec is an OpenAPI 3.1 document, yet some stream fields (finish_reason, logprobs) still carry
# 3.0's `nullable: true`; OpenAI sends null there, so the validator honours that keyword too.
SpecValidator: Any = extend(
    OAS31Validator,
    {
        "type": _honouring_nullable(OAS31Validator.VALIDATORS["type"]),
        "enum": _honouring_nullable(OAS31Validator.VALIDATORS["enum"]),
    },
)


@cache
def load_spec() -> dict[str, Any]:
    """OpenAI's OpenAPI spec, parsed once (C loader when available: the file is 3 MB)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)
    return loaded


@cache
def spec_checker() -> Check:
    """A function validating an instance against one of the spec's component schemas, $refs resolved."""
    spec = load_spec()
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def check_against(instance: Any, schema_name: str) -> None:
        assert schema_name in spec["components"]["schemas"]
        schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
        validate(instance, schema, cls=SpecValidator, registry=registry)

    return check_against
