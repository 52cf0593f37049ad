"""Queries per aggregate; functions take a session and never commit (the handler does)."""
