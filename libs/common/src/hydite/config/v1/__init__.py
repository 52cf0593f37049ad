"""Generated protocol stubs (from proto/); regenerate with `make proto`."""
