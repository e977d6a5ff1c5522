"""One module per stack: kms, network, eks, msk (or kafka_selfhosted), redis, documentdb, edge,
app (with the pod it runs in ``deployment``)."""
