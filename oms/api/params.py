"""Numeric query parameters: ASCII digits within bounds, or a field error naming the parameter.

``str.isdigit()`` is not the test: it holds for '²' (which ``int()`` then refuses: a 500) and
for '٣' or a fullwidth '1' (which ``int()`` reads as 3 and 1). Only ``0-9`` are digits here, and
only a few of them, so an overlong value never reaches ``int()`` either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from oms.api.problems import FieldError

_DIGITS = re.compile(r"[0-9]{1,9}")


def bounded_int(
    query: Mapping[str, str],
    name: str,
    *,
    default: int,
    low: int,
    high: int,
    errors: list[FieldError],
) -> int:
    """The parameter ``name`` as an int from ``low`` to ``high`` (``default`` when absent); a
    wrong one adds its field error to ``errors`` and gives ``default``."""
    raw = query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
        return default
    return int(raw)
