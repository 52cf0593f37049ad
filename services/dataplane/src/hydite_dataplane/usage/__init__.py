"""Stage 8 (account): one usage event per request (`event`), gathered into sealed batches
(`outbox`) that go to JetStream in order (`publisher`)."""
