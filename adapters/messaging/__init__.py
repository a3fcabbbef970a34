"""Message senders (email now; SMS joins with payment requests)."""
