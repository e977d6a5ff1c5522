"""Kafka: the topic definitions, the agents that feed the engine and the producers.

Importing the package makes every aiokafka client back off after a failed metadata refresh
(``oms.stream.backoff``): without it a client spins on a broker that is down.
"""

from oms.stream.backoff import install_metadata_backoff

install_metadata_backoff()
