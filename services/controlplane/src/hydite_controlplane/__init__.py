"""Hydite control plane: admin API over Postgres and the ConfigService that streams config."""
