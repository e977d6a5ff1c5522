"""The role table: the README's matrix says what ``ROLE_ACTIONS`` does, and the key format."""

from __future__ import annotations

import re
from pathlib import Path

from oms.domain.access import (
    ROLE_ACTIONS,
    Action,
    ApiKey,
    Reach,
    Role,
    compose_key,
    key_digest,
    may,
    split_key,
)

README = Path(__file__).resolve().parents[3] / "README.md"
_ROW = re.compile(r"\| `(?P<action>[a-z_]+)` \| [^|]+ \|(?P<cells>( [a-z-]+ \|){4})$")


def _readme_matrix() -> dict[Action, dict[Role, str]]:
    text = README.read_text()
    start = text.index("<!-- role matrix")
    matrix: dict[Action, dict[Role, str]] = {}
    for line in text[start:].splitlines()[3:]:
        match = _ROW.match(line)
        if match is None:
            break
        cells = [c.strip() for c in match["cells"].strip(" |").split("|")]
        roles = (Role.VIEWER, Role.TRADER, Role.RISK, Role.ADMIN)
        matrix[Action(match["action"])] = dict(zip(roles, cells, strict=True))
    return matrix


def test_readme_matrix_when_read_then_says_exactly_what_the_table_does() -> None:
    # Arrange
    readme = _readme_matrix()

    # Act
    table = {
        action: {role: (ROLE_ACTIONS[role].get(action) or "-") for role in Role}
        for action in Action
    }

    # Assert
    assert set(readme) == set(Action), "every action has one README row"
    for action in Action:
        assert readme[action] == table[action], action


def test_may_when_reach_is_own_then_only_the_callers_accounts() -> None:
    # Arrange
    accounts = frozenset({"alice"})

    # Act
    own = may(Role.TRADER, Action.PLACE_ORDER, accounts, "alice")
    other = may(Role.TRADER, Action.PLACE_ORDER, accounts, "bob")
    nobody = may(Role.TRADER, Action.PLACE_ORDER, accounts, None)

    # Assert
    assert (own, other, nobody) == (True, False, False)


def test_may_when_role_lacks_the_action_then_refused_even_for_its_own_account() -> None:
    assert not may(Role.VIEWER, Action.PLACE_ORDER, frozenset({"alice"}), "alice")
    assert not may(Role.RISK, Action.HALT_ALL, frozenset(), None)
    assert may(Role.RISK, Action.HALT_ACCOUNT, frozenset(), "anyone")


def test_admin_when_any_action_then_reaches_every_account() -> None:
    assert all(ROLE_ACTIONS[Role.ADMIN][action] is Reach.ANY for action in Action)


def test_split_key_when_composed_then_gives_back_id_and_secret() -> None:
    # Arrange
    token = compose_key("0123456789abcdef", "s" * 43)

    # Act
    parts = split_key(token)

    # Assert
    assert parts == ("0123456789abcdef", "s" * 43)
    assert split_key("Bearer nonsense") is None
    assert split_key(token + "x") is None


def test_proves_when_secret_differs_then_false() -> None:
    # Arrange
    key = ApiKey("0123456789abcdef", key_digest("right"), Role.VIEWER, frozenset(), "", 0.0)

    # Act / Assert
    assert key.proves("right")
    assert not key.proves("wrong")
