"""Write the bench's table into the README's and the docs' performance sections.

``python -m bench.readme [RESULTS.json]`` (default: ``bench/.cache/results-latest.json``,
which every ``python -m bench`` run writes) renders the table of that run
(:func:`bench.report.render`) and puts it between the markers
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` of ``README.md`` and
``docs/performance.md``; ``python -m bench --update-readme`` does the same right
after a run. What lies outside the markers (the reading of the figures) is
left to people.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.config import REPO
from bench.report import render

__all__ = ["BEGIN", "END", "TARGETS", "replace_section", "update_files"]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
#: the files whose performance section is the bench's table
TARGETS = (REPO / "README.md", REPO / "docs" / "performance.md")


def replace_section(text: str, table: str) -> str:
    """``text`` with what lies between :data:`BEGIN` and :data:`END` replaced by ``table``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one {BEGIN} followed by one {END}")
    head, rest = text.split(BEGIN)
    _old, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table.strip()}\n{END}{tail}"


def update_files(results: dict[str, Any], targets: tuple[Path, ...] = TARGETS) -> list[Path]:
    """Render ``results`` (a ``python -m bench`` JSON) into every target; the files changed."""
    table = render(results["figures"], results["meta"])
    changed = []
    for path in targets:
        old = path.read_text(encoding="utf-8")
        new = replace_section(old, table)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", type=Path, default=REPO / "bench" / ".cache" / "results-latest.json")
    a = ap.parse_args(argv)
    results = json.loads(a.results.read_text(encoding="utf-8"))
    if results.get("meta", {}).get("quick"):
        print("bench.readme: refusing a --quick run (smoke sizes are not figures)", file=sys.stderr)
        return 2
    for path in update_files(results):
        print(f"updated {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
