"""The identity: section: defaults, shorthand limits, and errors naming file, line and key."""

from __future__ import annotations

import pytest

from traitsync.config.yaml_lines import load_yaml_text
from traitsync.errors import ConfigError
from traitsync.identity import load_identity_config


def test_defaults_and_shorthand() -> None:
    doc = load_yaml_text("space_id: s\nidentity:\n  rules:\n    - {id_type: anonymous_id, limit: '5 weekly'}\n"
                         "    - {id_type: email, limit: 2, period: '10 days', priority: 1}\n", "t.yaml")
    cfg = load_identity_config(doc)
    assert (cfg.rule("anonymous_id").limit, cfg.rule("anonymous_id").period_days) == (5, 7)
    assert (cfg.rule("email").limit, cfg.rule("email").period_days) == (2, 10)
    assert (cfg.rule("user_id").limit, cfg.rule("whatever").limit) == (1, 5)
    assert sorted(["zeta", "user_id", "email", "alpha"], key=cfg.priority_key) == ["email", "user_id", "alpha",
                                                                                    "zeta"]
    assert cfg.rule("x").blocks("000") and cfg.rule("x").blocks("null") and not cfg.rule("x").blocks("a0")
    assert (cfg.max_merges, cfg.max_mappings) == (100, 1000)


@pytest.mark.parametrize(("text", "key"), [
    ("identity:\n  rules:\n    - {id_type: email, limit: 0}\n", "identity.rules[0].limit"),
    ("identity:\n  rules:\n    - {id_type: email, period: fortnightly}\n", "identity.rules[0].period"),
    ("identity:\n  blocked_values: [{regex: '('}]\n", "identity.blocked_values[0]"),
    ("identity:\n  rulez: []\n", "identity.rulez"),
    ("identity:\n  rules:\n    - {id_type: email}\n    - {id_type: email}\n", "identity.rules[1].id_type"),
    ("accounts:\n  membership: sometimes\n", "accounts.membership"),
])
def test_errors_name_file_line_and_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_identity_config(load_yaml_text("space_id: s\n" + text, "t.yaml"))
    assert err.value.file == "t.yaml"
    assert err.value.key is not None and err.value.key.startswith(key)
    assert err.value.line is not None and err.value.line >= 2


def test_accounts_membership_reaches_the_resolver() -> None:
    assert load_identity_config(load_yaml_text("space_id: s\n", "t.yaml")).account_membership == "many"
    doc = load_yaml_text("space_id: s\naccounts: {membership: latest}\nidentity:\n  caps: {merges: 5}\n", "t.yaml")
    cfg = load_identity_config(doc)
    assert (cfg.account_membership, cfg.max_merges) == ("latest", 5)
