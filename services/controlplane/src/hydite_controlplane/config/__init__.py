"""Config distribution: change log, snapshot builder, cache and the gRPC ConfigService."""
