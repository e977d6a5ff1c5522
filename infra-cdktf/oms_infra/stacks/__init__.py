"""One module per stack: kms, network, eks, msk (or kafka, self-hosted), redis, documentdb,
edge, app."""
