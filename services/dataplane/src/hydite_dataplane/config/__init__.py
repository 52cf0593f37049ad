"""The config snapshot on the data plane: the immutable value a request reads (`snapshot`), the
holder that swaps it (`holder`), the pure decoding of the config protocol (`decode`) and the
stream that keeps it current (`client`)."""
