"""Read models built from the ordered event log; each can be rebuilt from position 0."""
