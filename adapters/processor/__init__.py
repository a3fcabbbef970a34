"""The card processor port and its adapters."""
