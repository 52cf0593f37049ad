"""Stage 4 (admit): rate limits now (`windows`, `limiter`); cluster-wide shares and budgets join here."""
