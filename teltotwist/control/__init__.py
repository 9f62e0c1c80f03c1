"""The control plane: the HTTP API, metrics and health."""
