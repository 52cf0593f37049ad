"""Code shared by the Hydite services: protocol stubs, usage events, settings, errors, pricing."""
