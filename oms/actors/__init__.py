"""Actors: a pykka runtime on a shared dispatcher, the order actors and their directory."""
