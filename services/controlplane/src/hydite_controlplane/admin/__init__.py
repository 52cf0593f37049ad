"""LiteLLM-compatible admin routes of the control plane."""
