"""Cross-service tests: the services run as real processes against real Postgres and NATS."""
