"""The Lua scripts: found without a hand-kept list, shipped as they are in lua/."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

from flashclaim.campaigns import META_FIELDS
from flashclaim.claim.decision import ClaimCode
from flashclaim.store.scripts import REPLY_CODES, load_sources
from flashclaim.stream import FIELDS, SCHEMA_VERSION

REPO_LUA = Path(__file__).resolve().parents[2] / "lua"


def test_every_script_in_lua_is_loaded_with_its_includes() -> None:
    """Every lua/*.lua is a script; lua/include/ pieces replace their `--#include` lines."""
    pieces = {p.stem: p.read_text(encoding="utf-8") for p in (REPO_LUA / "include").glob("*.lua")}
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in REPO_LUA.glob("*.lua")}
    loaded = load_sources()
    assert on_disk and set(loaded) == set(on_disk)
    used: set[str] = set()
    for name, text in on_disk.items():
        expanded = text
        for piece in re.findall(r"^--#include ([a-z_]+)(?=\n|\Z)", text, re.MULTILINE):
            used.add(piece)
            expanded = expanded.replace(f"--#include {piece}", pieces[piece].rstrip("\n"))
        assert loaded[name] == expanded and "--#include" not in loaded[name], name
    assert used == set(pieces)  # no piece lies unused
    # the clock is one piece: no script reads TIME by itself
    assert all("redis.call('TIME')" not in t for t in on_disk.values())


def test_reply_codes_mirror_each_scripts_header() -> None:
    """Each script's status words (or numbers), as its header's Returns block lists them,
    are exactly its enum's values in store/scripts.py."""
    sources = load_sources()
    for script, codes in REPLY_CODES.items():
        returns = sources[script].split("]]", 1)[0].split("Returns", 1)[1]
        if issubclass(codes, IntEnum):
            listed: set[object] = {int(n) for n in re.findall(r"^  (-?[0-9]+) ", returns, re.M)}
        else:
            listed = set(re.findall(r'\{"([a-z_]+)"', returns))
        assert listed == {c.value for c in codes}, script


def test_every_script_declares_itself() -> None:
    """Shebang (so an out-of-memory or read-only server refuses it whole) and a header."""
    for name, source in load_sources().items():
        assert source.startswith("#!lua"), name
        header = source.split("]]", 1)[0]
        assert "KEYS" in header and "ARGV" in header and "Returns" in header, name


def test_claim_codes_mirror_the_script() -> None:
    """Every claim code is one claim.lua answers, or one cap_reserve.lua does for it."""
    sources = load_sources()
    in_lua = set(re.findall(r"(?:reply|reject)\('([a-z_]+)'", sources["claim"]))
    in_lua |= set(re.findall(r"return \{ '(cap_[a-z_]+)'", sources["cap_reserve"]))
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
    xadd = source[source.index("'XADD', stream_key"):]  # the claim record (not the holdout's)
    written = re.findall(r"'([a-z_]+)', ", xadd[:xadd.index(")")])
    assert tuple(written) == FIELDS
