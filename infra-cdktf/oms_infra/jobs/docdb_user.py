"""Create or update the app's DocumentDB user: readWrite on its databases, nothing else.

DocumentDB users live in the database, not in the AWS API, so the app stack runs this with the
app's image (``python -c``; pymongo is there) as a Job before the Deployment, connected as the
master user. It is idempotent: a user that exists gets its password and roles set again.
Reads ``MASTER_URL``, ``APP_USER``, ``APP_PASSWORD`` and ``APP_DATABASE`` from its environment.
"""

from __future__ import annotations

import os
from typing import Any


def app_roles(database: str) -> list[dict[str, str]]:
    """The app's only role: read and write its own database and its recovery log's, which is
    ``<database>_log`` (``oms.store.mongo_connection.log_database_name``; this script runs
    alone, so the rule is written again here and a test holds the two together)."""
    return [{"role": "readWrite", "db": name} for name in (database, f"{database}_log")]


def ensure_user(admin: Any, name: str, password: str, database: str) -> str:
    """Create the user, or reset its password and roles; say which (``admin``: the admin db)."""
    exists = bool(admin.command("usersInfo", name)["users"])
    verb = "updateUser" if exists else "createUser"
    admin.command(verb, name, pwd=password, roles=app_roles(database))
    return "updated" if exists else "created"


def main() -> None:
    """Connect as the master user and ensure the app's user."""
    import pymongo  # noqa: PLC0415  (the app's image has it; the synth does not need it)

    client: Any = pymongo.MongoClient(os.environ["MASTER_URL"], serverSelectionTimeoutMS=30_000)
    name, database = os.environ["APP_USER"], os.environ["APP_DATABASE"]
    outcome = ensure_user(client.admin, name, os.environ["APP_PASSWORD"], database)
    print(f"{outcome} {name}: {app_roles(database)}")


if __name__ == "__main__":
    main()
