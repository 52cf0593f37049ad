"""Queries per aggregate: each function takes the session as a keyword-only `session` argument and
never commits (the admin handler commits once per request)."""
