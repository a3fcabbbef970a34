"""Everything that talks to the outside world: stores, processor, senders, clock."""
