"""The MongoDB schema: the beanie documents bound and the indexes the store reads by, created
once per start (only the missing ones)."""

from __future__ import annotations

from typing import Any

from beanie import init_beanie
from pymongo.asynchronous.database import AsyncDatabase

from oms.store.documents import DOCUMENT_MODELS, INDEXES

__all__ = ["init_database", "is_ferretdb"]

Raw = dict[str, Any]


async def is_ferretdb(database: AsyncDatabase[Raw]) -> bool:
    """True when the server is FerretDB (its ``buildInfo`` says so)."""
    info = await database.command("buildInfo")
    return "ferretdbVersion" in info


async def init_database(
    database: AsyncDatabase[Raw], *, secondary_indexes: bool | None = None
) -> None:
    """Bind the beanie documents and create the indexes that are missing; safe on every start.

    ``secondary_indexes`` None: on MongoDB and DocumentDB yes, on FerretDB no. FerretDB 1.24
    on SQLite never reads through them (an indexed equality scans every document, measured),
    while they cost writes: ``insert_many`` of order documents went from ~4,700 to ~2,550
    documents/s with them. ``_id`` stays unique everywhere, which is all the store relies on.
    Beanie's own index creation re-sends every index on each start, and FerretDB 1.24 drops the
    connection when ``createIndexes`` names an index that exists: only missing ones are sent.
    """
    await init_beanie(database=database, document_models=DOCUMENT_MODELS, skip_indexes=True)
    if secondary_indexes is None:
        secondary_indexes = not await is_ferretdb(database)
    if not secondary_indexes:
        return
    for name, indexes in INDEXES.items():
        collection = database[name]
        existing = set(await collection.index_information())
        wanted = [i for i in indexes if i.document["name"] not in existing]
        if wanted:
            await collection.create_indexes(wanted)
