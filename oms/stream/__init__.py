"""Kafka: the faust app, the topic definitions and the agents that feed the engine."""
