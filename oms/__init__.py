"""oms: an actor-model order management system for crypto spot trading."""

__version__ = "0.1.0"
