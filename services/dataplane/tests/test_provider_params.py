"""Each adapter honours exactly the parameters the shared table says its provider honours, so the
control plane's /model_group/info and the data plane's drop_params agree."""

from __future__ import annotations

from hydite_common.openai_params import OPENAI_OPERATION_PARAMS, honoured_params
from hydite_dataplane.providers.mock import MockTransport
from hydite_dataplane.providers.registry import build_providers
from hydite_dataplane.resources.ids import ResourceIdCodec

TRANSLATED_OPERATIONS = frozenset({"responses", "messages"})
"""Answered over a chat adapter: they honour their own shape's parameters."""


def test_adapters_honour_what_the_shared_table_says() -> None:
    """For every provider and every OpenAI operation it serves directly, the same set."""
    providers = build_providers(MockTransport(), ResourceIdCodec("salt"))
    checked = 0
    for name, provider in providers.items():
        for operation, adapter in provider.operations.items():
            if operation in TRANSLATED_OPERATIONS or operation not in OPENAI_OPERATION_PARAMS:
                continue
            assert adapter.supported_params == honoured_params(name, operation), (name, operation)
            checked += 1
    assert checked > 20
