"""Kafka: the topic definitions, the agents that feed the engine and the producers."""
