"""Print the API's OpenAPI document as the web app's types are generated from it.

``make web-types`` writes it to ``web/openapi.json`` and runs openapi-typescript on it; the
committed copy is compared with the server's own by ``tests/unit/api/test_web_types.py``, so a
route or schema change that the web app's types do not follow fails the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

# The document of this checkout's oms, whichever venv runs the script (a worktree shares one).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from oms.api.openapi import openapi_document


def document_text() -> bytes:
    """The document as committed: sorted keys, indented, one trailing newline."""
    return (
        orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


if __name__ == "__main__":
    sys.stdout.buffer.write(document_text())
