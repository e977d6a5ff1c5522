"""System of record and caches: beanie documents and repositories, Redis idempotency and caches."""
