"""Stage 6 (call provider): one adapter per wire format and operation, pure translation between the
internal request shape and the provider's (`base` says what an adapter is, `registry` which
provider has which adapters and transport)."""
