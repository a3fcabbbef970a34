"""Background work: the scheduler, the writeback worker, the relay and the Kafka consumers."""
