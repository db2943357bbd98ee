"""The results table: figure | ratio1 | pye2 | pye2/ratio1 | target, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ROWS", "Row", "machine", "render", "rows_for"]

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One line of the table: how to read a value out of a figure's result, and its target."""

    figure: str
    label: str
    unit: str
    get: Callable[[dict[str, Any]], float | None]
    target: str
    #: "higher" / "lower" is better, "zero" (pye2 must be 0), "below" (pye2 under ``limit``); None: informational
    better: str | None
    #: the performance issue's ratio: pye2 >= factor * ratio1 ("higher") or <= factor * ratio1 ("lower")
    factor: float = 1.0
    #: an absolute bound pye2 must also meet ("lower", "below")
    limit: float | None = None
    #: the figure whose ratio1 result is the baseline (default: this row's own figure)
    baseline: str | None = None


def _dig(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def get(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return get


def _scaled(get: Callable[[dict[str, Any]], float | None], factor: float) -> Callable[[dict[str, Any]], float | None]:
    def scaled(result: dict[str, Any]) -> float | None:
        v = get(result)
        return None if v is None else v * factor
    return scaled


def _run_of(index: int, key: str) -> Callable[[dict[str, Any]], float | None]:
    """``key`` of the ``index``-th size of a figure that ran several (``runs``)."""
    def get(result: dict[str, Any]) -> float | None:
        runs = result.get("runs")
        if not isinstance(runs, list) or index >= len(runs) or not isinstance(runs[index], dict):
            return None
        return _dig(key)(runs[index])
    return get


_DEFAULT_SIZES = {"ingest_nodes": 1000, "mem_nodes": 10_000, "sim_nodes": [10, 100, 1000],
                  "sim_seconds": [3600, 3600, 3600], "sim_note": ["", "", ""]}
MB = 1 / 2**20
KB = 1 / 1024

ROWS = [
    Row("ingest-pl", "payload ingest, {ingest_nodes:,} nodes, max sustained", "msg/s", _dig("max_sustained", "median"),
        ">= 2.0x ratio1", "higher", 2.0),
    Row("ingest-pl", "  consumer CPU at that rate", "% core", _dig("sink_cpu_pct_at_max", "median"), "", None),
    Row("ingest-pl-w", "  pye2 with verify_workers=0 (every check in the session's process)", "msg/s",
        _dig("max_sustained", "median"), "", None, baseline="ingest-pl"),
    Row("ingest-pl-w", "    consumer CPU at that rate", "% core", _dig("sink_cpu_pct_at_max", "median"),
        "", None),
    Row("ingest-share", "  pye2, 2 sessions in one share group (scale out on the broker)", "msg/s",
        _dig("two", "max_sustained", "median"), "", None),
    Row("ingest-share", "    1 session in the group, same stream", "msg/s", _dig("one", "max_sustained", "median"),
        "", None),
    Row("ingest-share", "    2 sessions / 1", "x", _dig("ratio"), "", None),
    Row("ingest-hb", "v2 heartbeat ingest, {ingest_nodes:,} nodes, max sustained", "msg/s", _dig("max_sustained", "median"),
        ">= 2.5x ratio1", "higher", 2.5),
    Row("ingest-hb", "  consumer CPU at that rate", "% core", _dig("sink_cpu_pct_at_max", "median"), "", None),
    Row("loss", "messages lost without being counted (all rates)", "msgs", _dig("uncounted"), "pye2 = 0", "zero"),
    Row("loss", "  of messages sent", "msgs", _dig("sent"), "", None),
    Row("loss", "  pye2 reports as missed payloads (EE_MESSAGE_SEQ gaps)", "msgs", _dig("missed_reported"), "", None),
    Row("loss", "  tampered messages rejected", "of 20", _dig("tampered", "rejected"), "pye2 = all", None),
    Row("mem-node", "memory per known node ({mem_nodes:,} nodes)", "KB", _scaled(_dig("bytes_per_node"), KB),
        "<= 1/5 ratio1", "lower", 0.2),
    Row("mem-idle", "RSS after import + connected idle session", "MB", _scaled(_dig("rss_idle"), MB),
        "<= 1/3 ratio1", "lower", 1 / 3),
    Row("mem-idle", "  RSS after import only", "MB", _scaled(_dig("rss_import"), MB), "", None),
    Row("cmd-latency", "command on the wire, median", "ms", _dig("plain", "latency_ms", "median"),
        "<= 1/3 ratio1", "lower", 1 / 3),
    Row("cmd-latency", "command on the wire, p99", "ms", _dig("plain", "latency_ms", "p99"), "<= 5 ms", "below",
        limit=5.0),
    Row("cmd-latency", "  encrypted command, median", "ms", _dig("encrypted", "latency_ms", "median"), "", None),
    Row("cmd-latency", "  encrypted command, p99", "ms", _dig("encrypted", "latency_ms", "p99"), "", None),
    Row("cmd-latency", "  wire floor: a pre-built packet from a raw socket, median", "ms",
        _dig("floor", "latency_ms", "median"), "", None),
    Row("simnet", "simulated network, {sim_nodes[0]:,} nodes, one simulated hour{sim_note[0]}", "wall s",
        _run_of(0, "hour_s"), "", None),
    Row("simnet", "simulated network, {sim_nodes[1]:,} nodes, one simulated hour{sim_note[1]}", "wall s",
        _run_of(1, "hour_s"), "< 10 s", "below", limit=10.0),
    Row("simnet", "simulated network, {sim_nodes[2]:,} nodes, one simulated hour{sim_note[2]}", "wall s",
        _run_of(2, "hour_s"), "< 60 s", "below", limit=60.0),
]


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == int(v) or abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _met(row: Row, r1: float | None, p: float | None) -> str:
    if p is None:
        return ""
    if row.better == "zero":
        return "yes" if p == 0 else "NO"
    if row.better == "below":
        assert row.limit is not None
        return "yes" if p < row.limit else "NO"
    if row.better is None or r1 is None:
        return ""
    ok = p >= row.factor * r1 if row.better == "higher" else p <= row.factor * r1
    if row.limit is not None:
        ok = ok and p <= row.limit
    return "yes" if ok else "NO"


def rows_for(figures: Results, sizes: dict[str, Any] | None = None) -> list[list[str]]:
    """Table cells for every row whose figure ran (``sizes`` fills the labels: nodes, seconds)."""
    out = []
    for row in ROWS:
        fig = figures.get(row.figure)
        if not fig:
            continue
        vals = {sdk: (row.get(res) if isinstance(res, dict) and "error" not in res else None)
                for sdk, res in fig.items()}
        r1, p = vals.get("ratio1"), vals.get("pye2")
        if row.baseline is not None:
            base = (figures.get(row.baseline) or {}).get("ratio1")
            r1 = row.get(base) if isinstance(base, dict) and "error" not in base else None
        ratio = f"{p / r1:.2f}x" if r1 and p is not None and row.better not in (None, "below") else ""
        label = f"{row.label.format(**{**_DEFAULT_SIZES, **(sizes or {})})} ({row.unit})"
        errors = {sdk for sdk, res in fig.items() if isinstance(res, dict) and "error" in res}
        if not errors and all(v is None for v in vals.values()):
            continue  # e.g. the encrypted-command rows of a --quick run
        cells = [label,
                 "error" if "ratio1" in errors else _fmt(r1) if ("ratio1" in fig or r1 is not None) else "skipped",
                 "error" if "pye2" in errors else _fmt(p) if "pye2" in fig else "skipped",
                 ratio, row.target, _met(row, r1, p)]
        out.append(cells)
    return out


def render(figures: Results, meta: dict[str, Any]) -> str:
    """The Markdown table, headed by the date and the machine."""
    header = ["figure", "ratio1 " + str(meta.get("ratio1_version", "")), "pye2 " + str(meta.get("pye2_version", "")),
              "pye2/ratio1", "target", "met"]
    rows = rows_for(figures, meta.get("sizes"))
    lines = [f"{meta['date']} - {meta['machine']}" + (" - QUICK (smoke sizes, not figures)" if meta.get("quick")
                                                      else ""),
             "",
             "| " + " | ".join(header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + [f"- {note}" for note in notes(figures, meta)]
    return "\n".join(lines)


def notes(figures: Results, meta: dict[str, Any]) -> list[str]:
    """Context lines printed under the table."""
    out = []
    if meta.get("pye2_code"):
        changed = meta.get("pye2_code_at_end") not in (None, meta["pye2_code"])
        out.append(f"pye2 code measured: {meta['pye2_code']}" + (
            f" -> {meta['pye2_code_at_end']} (pye2 changed DURING this run: sinks started later used the new code)"
            if changed else ""))
    paths = meta.get("pye2_paths")
    if paths:
        out.append(f"pye2 paths active (default settings, this install): signatures {paths['verifier']}, "
                   f"JSON {paths['json']}, verify_workers {paths['verify_workers']} ({paths['cores']} cores)")
    if meta.get("pye2_verifier_env"):
        out.append(f"PYE2_VERIFIER={meta['pye2_verifier_env']} (pye2's signature backend forced)")
    check = meta.get("corpus_check_ratio1")
    if check:
        out.append(f"corpus signed with pye2's RATIO1 wire format; ratio1's own verify(): {check['valid']}/"
                   f"{check['checked']} sampled messages valid, {check['tampered_valid']}/{check['tampered']} "
                   "tampered ones valid")
    for kind in ("ingest-pl", "ingest-pl-w", "ingest-hb"):
        for sdk, res in figures.get(kind, {}).items():
            ms = res.get("max_sustained") if isinstance(res, dict) else None
            if ms and ms.get("n"):
                out.append(f"{kind} {sdk}: max sustained median {_fmt(ms['median'])} [{_fmt(ms['min'])}-"
                           f"{_fmt(ms['max'])}] n={ms['n']}, {res['seconds_per_step']:g} s steps")
    for res in figures.get("ingest-share", {}).values():
        for part in ("one", "two"):
            ms = res.get(part, {}).get("max_sustained") if isinstance(res, dict) else None
            if ms and ms.get("n"):
                out.append(f"ingest-share pye2, {res[part]['sessions']} session(s) in a share group: max sustained "
                           f"median {_fmt(ms['median'])} [{_fmt(ms['min'])}-{_fmt(ms['max'])}] n={ms['n']}, "
                           f"{res['seconds_per_step']:g} s steps")
    for res in figures.get("simnet", {}).values():
        for run in res.get("runs", []) if isinstance(res, dict) else []:
            if "error" in run:
                out.append(f"simnet {run['nodes']:,} nodes: {run['error']}")
            else:
                out.append(f"simnet {run['nodes']:,} nodes, {run['simulated_s']:g} simulated s: advance "
                           f"{_fmt(run['advance_s'])} s wall, {_fmt(run.get('cpu_s'))} s CPU in all (build "
                           f"{_fmt(run['build_s'])} s, start {_fmt(run['start_s'])} s), {run['events']:,} events")
    for sdk, res in figures.get("loss", {}).items():
        if isinstance(res, dict) and "steps" in res:
            rungs = ", ".join(f"{_fmt(s['achieved'])}/s: {s['uncounted']} of {s['sent']}" for s in res["steps"])
            out.append(f"loss {sdk}: uncounted per rung (achieved rate: uncounted of sent) {rungs}")
    for res in figures.get("ingest-pl", {}).values():
        for run in res.get("runs", []) if isinstance(res, dict) else []:
            prof = run.get("profile")
            if prof and prof.get("self"):
                top = "; ".join(f"{frame} {pct}%" for frame, pct in prof["self"][:6])
                out.append(f"pye2 sink profile at {run['max_sustained']} pl/s (py-spy, self time): {top}")
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mosquitto_version() -> str:
    try:
        out = subprocess.run(["mosquitto", "-h"], check=False, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "mosquitto ?"
    first = (out.stdout or out.stderr).splitlines()
    return first[0].strip() if first else "mosquitto ?"


def machine() -> dict[str, Any]:
    """Date and a one-line description of this machine."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    desc = (f"{os.cpu_count()} cores {_cpu_model()}, {mem_gb:.0f} GB, Linux {platform.release()}, "
            f"Python {platform.python_version()}, {_mosquitto_version()} on 127.0.0.1")
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": desc}
