"""Alembic migrations of the Hydite schema (the control plane owns it)."""
