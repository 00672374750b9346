"""The Lua scripts: found without a hand-kept list, shipped as they are in lua/."""

from __future__ import annotations

import re
from pathlib import Path

from flashclaim.campaigns import META_FIELDS
from flashclaim.store.scripts import ClaimCode, load_sources
from flashclaim.stream import FIELDS, SCHEMA_VERSION

REPO_LUA = Path(__file__).resolve().parent.parent / "lua"


def test_every_script_in_lua_is_loaded_unchanged() -> None:
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in REPO_LUA.glob("*.lua")}
    assert on_disk and load_sources() == on_disk


def test_every_script_declares_itself() -> None:
    """Shebang (so an out-of-memory or read-only server refuses it whole) and a header."""
    for name, source in load_sources().items():
        assert source.startswith("#!lua"), name
        header = source.split("]]", 1)[0]
        assert "KEYS" in header and "ARGV" in header and "Returns" in header, name


def test_claim_codes_mirror_the_script() -> None:
    source = load_sources()["claim"]
    in_lua = set(re.findall(r"(?:reply|reject)\('([a-z_]+)'", source))
    assert in_lua == {c.value for c in ClaimCode}


def test_scripts_touch_only_declared_keys() -> None:
    """No KEYS/SCAN inside scripts, and no key name built in Lua (keys.py builds them)."""
    for name, source in load_sources().items():
        body = source.split("]]", 1)[1]
        assert "'KEYS'" not in body and "'SCAN'" not in body, name
        assert not re.search(r"redis\.call\('\w+', '[^']*:", body), name


def test_scripts_spell_only_the_meta_fields_python_defines() -> None:
    """Every quoted field a script reads or writes on a campaign's meta hash is one of
    campaigns.META_FIELDS (a typo in Lua would read nil and decide wrongly)."""
    meta_calls = re.compile(r"redis\.call\('(?:HMGET|HGET|HINCRBY|HSET)', (?:meta_key|KEYS\[1\]),"
                            r"([^)]*)\)", re.S)
    seen: set[str] = set()
    for name, source in load_sources().items():
        if name in ("claim", "adjust_stock", "set_paused"):  # KEYS[1] is the meta hash
            for args in meta_calls.findall(source):
                seen |= set(re.findall(r"'([a-z_]+)'", args))
    assert seen and seen <= set(META_FIELDS), seen - set(META_FIELDS)
    assert {"remaining", "granted", "paused", "stock", "rl_window_ms"} <= seen


def test_the_record_version_is_written_once_in_lua() -> None:
    source = load_sources()["claim"]
    assert re.findall(r"local SCHEMA_VERSION = '(\d+)'", source) == [str(SCHEMA_VERSION)]
    xadd = source[source.index("'XADD'"):]
    written = re.findall(r"'([a-z_]+)', ", xadd[:xadd.index(")")])
    assert tuple(written) == FIELDS
