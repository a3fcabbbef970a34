"""Use cases: one module per capability.

The API, the pages, the CLI and the workers all call these.
"""
