"""The docs stand alone and stay true: links resolve, named tests exist, every setting is listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "loadtests" / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TEST_REF = re.compile(r"(tests/(?:\w+/)?test_\w+\.py)|::(\w+)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_project_and_resolve(doc: Path) -> None:
    text = doc.read_text()
    # Users of the package have only the package: nothing outside it may be referred to.
    assert "../shared" not in text and "contract.md" not in text
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the project: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_every_test_the_reliability_doc_names_exists() -> None:
    named = 0
    for line in (ROOT / "docs" / "reliability.md").read_text().splitlines():
        current: Path | None = None
        for file_ref, test_ref in TEST_REF.findall(line):
            if file_ref:
                current = ROOT / file_ref
                assert current.exists(), file_ref
            elif current is not None:
                source = current.read_text()
                assert re.search(rf"^(async )?def {test_ref}\(", source, re.M), (
                    f"docs/reliability.md names {current.name}::{test_ref}, which does not exist")
                named += 1
    assert named >= 40


def test_every_setting_is_in_the_readme() -> None:
    settings = set(re.findall(r'"(FLASHCLAIM_[A-Z_]+)"', (ROOT / "flashclaim" / "settings.py")
                              .read_text()))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in settings if f"`{name}`" not in readme)
    assert not missing, f"settings missing from the README's table: {missing}"


SETTINGS_ROW = re.compile(r"\| (`FLASHCLAIM_[A-Z_]+`(?:, `FLASHCLAIM_[A-Z_]+`)*) \| ([^|]*) \|")
FLAG_SAMPLES = {"--redis-url": "redis://127.0.0.1:1/0", "--admin-token": "sample-token",
                "--data-dir": "/tmp/sample-data", "--namespace": "sample",
                "--ledger-dsn": "sqlite:////tmp/sample.sqlite3", "--admin-port": "8123"}


def settings_rows() -> list[tuple[str, str]]:
    """(variable, flag cell) of every row of the README's settings table."""
    return [(names.split("`")[1], flag.strip()) for names, flag in
            SETTINGS_ROW.findall((ROOT / "README.md").read_text())]


def test_every_settings_row_is_a_flag_serve_takes_or_says_env_only() -> None:
    from flashclaim.cli import build_parser, serve_settings

    rows = settings_rows()
    assert len(rows) >= 25
    for variable, flag_cell in rows:
        if flag_cell == "env only":
            continue
        flag = flag_cell.strip("`")
        assert flag in FLAG_SAMPLES, f"{variable}: the flag cell says {flag_cell!r}"
        args = build_parser().parse_args(["serve", flag, FLAG_SAMPLES[flag]])
        field = variable.removeprefix("FLASHCLAIM_").lower()
        value = getattr(serve_settings(args), field)
        assert str(value) == FLAG_SAMPLES[flag], (variable, flag, value)
