"""Use cases, the HTTP API, the CLI and the wiring of adapters."""
