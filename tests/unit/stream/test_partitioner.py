"""The cached partitioner answers exactly what Kafka's default (murmur2) partitioner answers."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from oms.stream.partitioner import CachedPartitioner, partition_of


def test_cached_partitioner_when_asked_for_any_key_and_count_then_agrees_with_the_default() -> None:
    # Arrange
    cached, default = CachedPartitioner(max_keys=16), DefaultPartitioner()
    keys = [f"acct-{n}".encode() for n in range(64)] + [b"", b"BTC-USD", bytes(range(40))]

    # Act
    answers = [
        (cached(key, list(range(n)), list(range(n))), default(key, list(range(n)), list(range(n))))
        for _ in range(2)  # the second round answers from the cache (or after it was cleared)
        for n in (1, 3, 6, 12)
        for key in keys
    ]

    # Assert
    assert all(mine == kafka for mine, kafka in answers)


def test_cached_partitioner_when_a_message_has_no_key_then_picks_an_available_partition() -> None:
    # Arrange
    cached = CachedPartitioner()

    # Act
    chosen = {cached(None, [0, 1, 2, 3], [1, 3]) for _ in range(50)}

    # Assert
    assert chosen <= {1, 3}


def test_partition_of_when_given_an_account_then_is_where_kafka_puts_its_commands() -> None:
    default = DefaultPartitioner()
    for n in (1, 2, 6, 12):
        for account in (f"acct-{i}" for i in range(50)):
            every = list(range(n))
            assert partition_of(account, n) == default(account.encode(), every, every)
