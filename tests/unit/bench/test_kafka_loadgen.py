"""The benchmarks' librdkafka reader keeps what librdkafka reports instead of a record: a
benchmark missing events then says why, rather than only that they are missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from oms.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from kafka_loadgen import EventReader


def test_note_when_librdkafka_reports_errors_then_counted_by_kind_and_each_kind_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange: a reader never started (no broker needed to build one)
    reader = EventReader(Settings(), "order-events", lambda _at, _batch: None, from_end=True)
    unknown = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
    transport = KafkaError(KafkaError._TRANSPORT)

    # Act
    try:
        with caplog.at_level(logging.WARNING, logger="kafka_loadgen"):
            for error in (unknown, unknown, transport):
                reader._note(error)
    finally:
        reader._consumer.close()

    # Assert
    assert reader.errors == {"UNKNOWN_TOPIC_OR_PART": 2, "_TRANSPORT": 1}
    assert len(caplog.records) == 2
