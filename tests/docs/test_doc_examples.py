"""Every ```python block of docs/*.md runs, so the documentation cannot rot.

Blocks of one page run in order, in one namespace (a later block may use what
an earlier one defined), in a fresh working folder with ``PYE2_HOME`` pointing
into it. Tracebacks name the page and its real line numbers.

A block is left out only when the line just before its opening fence is the
marker ``<!-- no-run: reason -->`` (e.g. it needs a real broker). Exclusions
are pinned below, so adding one is a visible change to this file; a page whose
examples another test runs is listed in ``RUN_ELSEWHERE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: marker on the line right before a ```python fence: this block is shown, not run
NO_RUN = re.compile(r"^\s*<!--\s*no-run:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```python\s*$")

#: pages whose examples another test runs (so they do not run twice): page -> that test
RUN_ELSEWHERE = {"testing.md": "tests/pytest_plugin/test_docs.py"}

#: every excluded block, as (page, first line of code): keep this short
EXCLUDED = {
    ("getting-started.md", "from pye2 import Session"),
    ("transports.md", "from pye2 import Session"),
    ("scale-out.md", "# worker.py -- start it as many times as you need (same broker, same root)"),
}


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # line of the .md file where the code starts (1-based)
    code: str
    skip_reason: str | None


def blocks(page: Path) -> list[Block]:
    """The ```python blocks of a page, in order, dedented, with their exclusion marker if any."""
    lines = page.read_text("utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent = fence.group("indent")
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{page.name}:{i + 1}: ```python block is never closed")
        marker = NO_RUN.match(lines[i - 1]) if i > 0 else None
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1:end])
        found.append(Block(page.name, i + 2, dedent(body) + "\n", marker.group("reason") if marker else None))
        i = end + 1
    return found


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def run_page(page: Path) -> int:
    """Run a page's blocks in one namespace; return how many ran."""
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    ran = 0
    for block in blocks(page):
        if block.skip_reason is not None:
            continue
        # pad so that tracebacks show the line numbers of the .md file
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(page), "exec"), namespace)  # noqa: S102 - the documentation's own examples
        ran += 1
    return ran


@pytest.mark.parametrize("page", [p.name for p in pages() if p.name not in RUN_ELSEWHERE])
def test_the_examples_of_the_page_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fixtures").symlink_to(DOCS.parent / "tests" / "fixtures")  # as from the repo's root
    monkeypatch.setenv("PYE2_HOME", str(tmp_path / "home"))
    for name in ("PYE2_TRANSPORT", "PYE2_HOST", "PYE2_PORT", "PYE2_USER", "PYE2_PASS", "PYE2_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    path = DOCS / page
    expected = sum(1 for b in blocks(path) if b.skip_reason is None)
    assert run_page(path) == expected


def test_the_pages_have_examples_and_exclusions_stay_few_and_listed() -> None:
    runnable = {p.name: [b for b in blocks(p) if b.skip_reason is None] for p in pages()}
    excluded = {(b.page, b.code.strip().splitlines()[0]): b.skip_reason for p in pages() for b in blocks(p)
                if b.skip_reason is not None}
    assert set(excluded) == EXCLUDED, f"excluded blocks changed: {sorted(excluded.items())}"
    ran = sum(len(v) for k, v in runnable.items() if k not in RUN_ELSEWHERE)
    assert len(EXCLUDED) * 5 <= ran, f"{len(EXCLUDED)} excluded blocks for {ran} that run: too many"
    for page in ("getting-started.md", "client-api.md", "simulated-network.md", "protocol.md"):
        assert runnable[page], f"{page} has no executed example"


def test_pages_run_elsewhere_are_run_there() -> None:
    root = DOCS.parent
    for page, test in RUN_ELSEWHERE.items():
        assert (DOCS / page).exists(), page
        assert f'"docs" / "{page}"' in (root / test).read_text("utf-8"), f"{test} does not read docs/{page}"


def test_the_marker_is_recognised_and_blocks_are_split_correctly(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("text\n```python\nx = 1\n```\n<!-- no-run: needs a broker -->\n```python\nconnect()\n```\n"
                    "- item\n\n    ```python\n    y = x + 1\n    ```\n", "utf-8")
    found = blocks(page)
    assert [(b.line, b.code, b.skip_reason) for b in found] == [
        (3, "x = 1\n", None), (7, "connect()\n", "needs a broker"), (12, "y = x + 1\n", None)]
    assert run_page(page) == 2
