"""Hydite spend ingest: usage events from JetStream into spend logs, exactly once in effect."""
