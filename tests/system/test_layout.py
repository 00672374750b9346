"""The package layout is the architecture: parts import only the parts below them, and no
module imports itself back through another (docs/design.md draws the picture)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flashclaim"

# Each part and its layer; a module may import from its own part or from a lower layer.
# Parts on one layer are independent of each other.
LAYERS = {
    "foundation": 0,  # flashclaim/*.py: settings, errors, validation, times, tables, the
    "runtime": 0,     # campaign model, key names, the stream record; and the process helpers
    "schemas": 1,  # the API's request and response shapes, and the rules across fields
    "fair": 1,  # a fair sale's pure parts: challenges, keyed traces, the draw's ranking
    "store": 2,
    "claim": 3,
    "checks": 3,
    "triggers": 3,  # events in and the rules that grant on them (through the grant store)
    "risk": 3,  # alerts: counted by the ledger consumer, read by the web
    "ledger": 4,
    "webhooks": 4,  # the dispatcher of the outbox (the ledger feeds it through the outbox)
    "checkout": 5,  # the use side: quotes from the wallet, orders through the store
    "web": 6,  # the service reads the ledger for wallets and reports
    "tools": 7,
    "cli": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    parts = module.split(".")
    if module in ("flashclaim.cli", "flashclaim.__main__"):
        return "cli"
    if len(parts) >= 3 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "foundation"


def imports_of(path: Path) -> set[str]:
    """Every flashclaim module the file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "flashclaim":
            for alias in node.names:  # `from flashclaim.web import http` names a module
                candidate = f"{node.module}.{alias.name}"
                sub = PACKAGE.parent / candidate.replace(".", "/")
                found.add(candidate if sub.with_suffix(".py").exists() or sub.is_dir()
                          else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "flashclaim"}
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layering_breaches(edges: dict[str, set[str]]) -> list[str]:
    breaches = []
    for module, targets in edges.items():
        mine = part_of(module)
        for target in targets:
            theirs = part_of(target)
            if theirs == mine or target == "flashclaim":
                continue
            if LAYERS[theirs] >= LAYERS[mine]:
                breaches.append(f"{module} ({mine}) imports {target} ({theirs})")
    return sorted(breaches)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt in edges and nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_part_is_named() -> None:
    parts = {part_of(m) for m in graph()}
    assert parts <= set(LAYERS), parts - set(LAYERS)
    assert {"store", "claim", "web", "ledger", "checks", "tools", "runtime"} <= parts


def test_parts_import_only_downward() -> None:
    assert layering_breaches(graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_checks_catch_a_breach() -> None:
    """The two checks above, shown to fail on a planted upward import and cycle."""
    planted = graph()
    planted["flashclaim.store.scripts"] = {*planted["flashclaim.store.scripts"],
                                           "flashclaim.web.app"}
    assert "flashclaim.store.scripts (store) imports flashclaim.web.app (web)" in \
        layering_breaches(planted)
    planted["flashclaim.web.app"] = {*planted["flashclaim.web.app"], "flashclaim.store.scripts"}
    assert any("flashclaim.store.scripts" in c and "flashclaim.web.app" in c
               for c in cycles(planted))
    planted["flashclaim.ledger.db"] = {"flashclaim.web.public_api"}
    assert "flashclaim.ledger.db (ledger) imports flashclaim.web.public_api (web)" in \
        layering_breaches(planted)


def test_downstream_imports_stay_where_the_docs_say() -> None:
    from flashclaim.keys import KeySpace
    from flashclaim.stream import ClaimRecord

    assert KeySpace.__module__ == "flashclaim.keys"
    assert ClaimRecord.__module__ == "flashclaim.stream"


# Files git may hold that are not text: the pages' screenshots in docs/.
_BINARY_ALLOWED = (".png",)
_MAX_TRACKED_BYTES = 1_000_000


def committed_breaches(paths: list[Path]) -> list[str]:
    """Files that do not belong in git: wheels and archives, binaries, anything over 1 MB."""
    breaches = []
    for path in paths:
        if path.name.endswith((".whl", ".tar.gz", ".zip", ".so", ".egg")):
            breaches.append(f"{path}: a package or binary")
        elif path.is_file() and path.stat().st_size > _MAX_TRACKED_BYTES:
            breaches.append(f"{path}: over 1 MB")
        elif path.is_file() and not path.name.endswith(_BINARY_ALLOWED) \
                and b"\0" in path.read_bytes()[:8192]:
            breaches.append(f"{path}: binary content")
    return breaches


def tracked_files() -> list[Path]:
    root = PACKAGE.parent
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return [root / name for name in listed if name]


def test_git_holds_no_wheels_binaries_or_large_files(tmp_path: Path) -> None:
    assert committed_breaches(tracked_files()) == []
    planted = tmp_path / "py_spy-0.4.3-py2.py3-none-manylinux1_x86_64.whl"
    planted.write_bytes(b"PK\x03\x04\0")
    assert committed_breaches([planted]) == [f"{planted}: a package or binary"]
