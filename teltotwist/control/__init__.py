# -*- test-case-name: tests.test_control_api,tests.test_control_metrics -*-
"""The control plane: what operators and backends see of the gateway and ask
of it (the HTTP API, metrics, health). It reads the gateway through its tracker
registry and data-path events, never through protocol objects."""
