"""traitsync.yaml: env substitution, and errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from traitsync.config import load_config, load_config_text
from traitsync.errors import ConfigError

GOOD = """\
space_id: spa_demo
sources:
  - id: src_web
    name: Website
    write_key: ${WEB_WRITE_KEY}
profile_api:
  access_secret: ${PROFILE_API_SECRET:-fallback-secret}
"""


def test_env_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_WRITE_KEY", "from-env")
    config = load_config_text(GOOD).config
    assert config.sources[0].write_key.get_secret_value() == "from-env"
    assert config.profile_api is not None
    assert config.profile_api.access_secret.get_secret_value() == "fallback-secret"
    assert "from-env" not in repr(config)  # secrets never print


@pytest.mark.parametrize("text,expected", [
    ("space_id: s\nsources:\n  - id: a\n    write_key: k\n    wrte: 1\n",
     "f.yaml:5 [sources[0].wrte]: unknown key (check its spelling against `traitsync schema`)"),
    ("space_id: s\nsources:\n  - id: a\n    write_key: ${NOT_SET_ANYWHERE}\n",
     "f.yaml:4 [sources[0].write_key]: environment variable NOT_SET_ANYWHERE is not set (referenced as "
     "${NOT_SET_ANYWHERE}); export it or give a default as ${NOT_SET_ANYWHERE:-value}"),
    ("sources: []\n", "f.yaml:1 [space_id]: required key is missing"),
    ("space_id: s\nsources:\n  - id: a\n    write_key: k\n  - id: a\n    write_key: j\n",
     "f.yaml:5 [sources[1].id]: duplicate source id 'a'"),
    ("space_id: s\nsources:\n  - id: a\n    write_key: k\n  - id: b\n    write_key: k\n",
     "f.yaml:6 [sources[1].write_key]: two sources share one write key"),
    ("space_id: s\nspace_id: t\n", "f.yaml:2 [space_id]: duplicate key 'space_id'"),
    ("space_id: [unclosed\n", "f.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ("space_id: s\nstorage: {durability: sometimes}\n",
     "f.yaml:2 [storage.durability]: Input should be 'normal' or 'full'"),
    ("space_id: s\naccounts:\n  membership: newest\n",
     "f.yaml:3 [accounts.membership]: Input should be 'many' or 'latest'"),
    ("space_id: s\naccounts:\n  membership: latest\n  moves: true\n",
     "f.yaml:4 [accounts.moves]: unknown key (check its spelling against `traitsync schema`)"),
])
def test_errors_name_file_line_and_key(text: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, file="f.yaml")
    assert str(info.value) == expected


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "config file not found" in str(info.value)
    assert "TRAITSYNC_CONFIG" in str(info.value)


def test_source_limits_read_sizes_with_units() -> None:
    text = ("space_id: s\nsources:\n  - id: a\n    write_key: k\n    limits: {message: 4MB, batch: 4 mb}\n"
            "  - id: b\n    write_key: j\n    limits: {batch: 600000}\n  - id: c\n    write_key: i\n")
    a, b, c = load_config_text(text, file="f.yaml").config.sources
    assert (a.limits.message, a.limits.batch) == (4 * 1024 * 1024, 4 * 1024 * 1024)
    assert (b.limits.message, b.limits.batch) == (32 * 1024, 600_000)
    assert (c.limits.message, c.limits.batch) == (32 * 1024, 500 * 1024)  # Segment's


@pytest.mark.parametrize("value,message", [
    ("4GB", "'4GB' is not a size: write a number of bytes, or one with KB or MB (4MB)"),
    ("128MB", "less than or equal to 67108864"),
])
def test_a_bad_size_names_its_line_and_key(value: str, message: str) -> None:
    text = f"space_id: s\nsources:\n  - id: a\n    write_key: k\n    limits:\n      batch: {value}\n"
    with pytest.raises(ConfigError) as err:
        load_config_text(text, file="f.yaml")
    assert str(err.value).startswith("f.yaml:6 [sources[0].limits.batch]: ")
    assert message in str(err.value)


def test_engine_partitions_default_to_one_and_are_bounded() -> None:
    assert load_config_text("space_id: s\n").config.engine.partitions == 1
    assert load_config_text("space_id: s\nengine: {partitions: 4}\n").config.engine.partitions == 4
    with pytest.raises(ConfigError, match=r"<string>:2 \[engine.partitions\]"):
        load_config_text("space_id: s\nengine: {partitions: 0}\n")
