"""Kafka clients as the relay and the consumers use them (kafka-python 3)."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger("payledger.kafka")

PARTITIONS = 12


def producer(bootstrap: str) -> Any:
    """Idempotent, acks from all in-sync replicas, ordered per partition."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        request_timeout_ms=10_000,
        max_block_ms=10_000,
    )


def consumer(bootstrap: str, topic: str, group: str) -> Any:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_records=500,
    )


def ensure_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    except TopicAlreadyExistsError:
        pass
    except KafkaError as error:
        log.info("topic %s not created (%s); assuming it exists", topic, error)
    finally:
        admin.close()
