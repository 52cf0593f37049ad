"""Hydite data plane: the stateless OpenAI-compatible inference proxy."""
