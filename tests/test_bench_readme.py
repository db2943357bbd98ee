"""The README's performance section is the bench's table: bench.readme writes it between its markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.readme import BEGIN, END, TARGETS, main, replace_section, update_files


def test_the_section_between_the_markers_is_replaced_and_nothing_else() -> None:
    text = f"intro\n{BEGIN}\nold table\n{END}\nreading of the figures\n"
    new = replace_section(text, "| new | table |\n")
    assert new == f"intro\n{BEGIN}\n| new | table |\n{END}\nreading of the figures\n"
    assert replace_section(new, "| new | table |") == new  # idempotent


@pytest.mark.parametrize("text", ["no markers", f"{END} x {BEGIN}", f"{BEGIN} {BEGIN} {END}", f"{BEGIN} only"])
def test_missing_or_misordered_markers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bench:begin"):
        replace_section(text, "table")


def test_the_project_files_carry_the_markers() -> None:
    for path in TARGETS:
        text = path.read_text(encoding="utf-8")
        assert text.count(BEGIN) == 1 and text.count(END) == 1, path


def _results(quick: bool) -> dict[str, object]:
    meta = {"date": "2026-12-04 09:00 UTC", "machine": "2 cores test CPU", "quick": quick, "ratio1_version": "3.5.60",
            "pye2_version": "0.1.0", "sizes": None}
    figures = {"mem-idle": {"ratio1": {"rss_idle": 100 * 2**20}, "pye2": {"rss_idle": 30 * 2**20}}}
    return {"meta": meta, "figures": figures}


def test_a_run_is_rendered_into_the_files(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(f"# x\n{BEGIN}\nstale\n{END}\nafter\n", encoding="utf-8")
    assert update_files(_results(False), (target,)) == [target]  # type: ignore[arg-type]
    text = target.read_text(encoding="utf-8")
    assert "\nstale\n" not in text and "| RSS after import + connected idle session (MB) | 100 | 30 | 0.30x |" in text
    assert text.endswith(f"{END}\nafter\n") and "2026-12-04 09:00 UTC - 2 cores test CPU" in text
    assert update_files(_results(False), (target,)) == []  # type: ignore[arg-type]


def test_a_quick_run_is_not_written(tmp_path: Path) -> None:
    results = tmp_path / "quick.json"
    results.write_text(json.dumps(_results(True)), encoding="utf-8")
    assert main([str(results)]) == 2
