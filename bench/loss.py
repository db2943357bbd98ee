"""Messages lost without being counted, at any rate.

A fresh consumer gets a many-round corpus (heartbeats and payloads
interleaved, each node's payloads numbered 1, 2, 3 ... and each message sent
exactly once, as a real network would) at a ladder of rates, from
comfortable to far beyond what it can process (the last rung is
unthrottled), each rung continuing where the previous one stopped. After
each rung the consumer may drain (until 3 s pass without progress). Then

    uncounted = sent - delivered to callbacks - counted by the SDK

where *counted* is what the SDK itself reports: pye2's ``session.stats``
``rejected`` (any reason) + ``dropped`` + ``filtered``; ratio1's callback
queues' ``rejected_full``. A message that vanished without the SDK saying
so is the failure this figure exists for (pye2's target: 0). For pye2 the
uncounted part is also split into *before the SDK* (``sent - received``:
the broker or the socket dropped it) and *inside the SDK*, and pye2's own
``missed_payloads`` (gaps in ``EE_MESSAGE_SEQ``: payloads it knows it never
got) is reported beside it; it is not part of *counted*, which follows the
issue's definition.

First, the corpus's tampered messages (a field changed after signing) are
sent once: a verifying consumer counts them as rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.loadgen import run_loadgen
from bench.sinkproc import SinkProcess, accounted

__all__ = ["loss_figure", "rounds_needed"]


def _send(cfg: BenchConfig, sink: SinkProcess, corpus: Path, kind: str, rate: float, count: int | None,
          once: bool = False, skip: int = 0) -> dict[str, Any]:
    s0 = sink.snap()
    g = run_loadgen(corpus, kind, host=cfg.host, port=cfg.port, rate=rate, count=count, once=once, skip=skip,
                    client_id="bench-loss")
    sink.wait_settled(accounted(s0) + g["sent"], idle=3.0, max_wait=180.0)
    s1 = sink.snap()
    delivered = (s1["hb"] + s1["pl"]) - (s0["hb"] + s0["pl"])
    counted = s1.get("counted", 0) - s0.get("counted", 0)
    out: dict[str, Any] = {"rate": rate, "achieved": g["rate"], "sent": g["sent"], "delivered": delivered,
                           "counted": counted, "uncounted": g["sent"] - delivered - counted}
    if "received" in s1:
        received = s1["received"] - s0["received"]
        out["lost_before_sdk"] = g["sent"] - received
        out["lost_inside_sdk"] = received - delivered - counted - (s1.get("queued", 0) - s0.get("queued", 0))
    if s1.get("missed") is not None:
        out["missed_reported"] = s1["missed"] - (s0.get("missed") or 0)
    return out


def rounds_needed(ladder: list[tuple[float, int]], nodes: int) -> int:
    """Rounds of the corpus (two messages per node each) that cover every rung once."""
    total = sum(count for _rate, count in ladder)
    return -(-total // (2 * nodes))


def loss_figure(cfg: BenchConfig, sdk: str, corpus: Path, ladder: list[tuple[float, int]]) -> dict[str, Any]:
    """Run the tampered check and every rung of ``ladder`` ((rate, count); rate 0 = unthrottled).

    ``corpus`` must hold at least ``sum(counts)`` heartbeats + payloads (see :func:`rounds_needed`).
    """
    with SinkProcess(cfg, sdk) as sink:
        sink.wait_ready()
        tampered = _send(cfg, sink, corpus, "bad", 1000, None, once=True)
        steps, offset = [], 0
        for rate, count in ladder:
            steps.append(_send(cfg, sink, corpus, "mix", rate, count, skip=offset))
            offset += count
    sent = sum(s["sent"] for s in steps)
    uncounted = sum(max(0, s["uncounted"]) for s in steps)
    return {
        "steps": steps,
        "sent": sent,
        "uncounted": uncounted,
        "uncounted_frac": round(uncounted / sent, 5) if sent else None,
        "uncounted_max_frac": max((round(max(0, s["uncounted"]) / s["sent"], 5) for s in steps if s["sent"]),
                                  default=None),
        "missed_reported": (sum(s["missed_reported"] for s in steps)
                            if all("missed_reported" in s for s in steps) else None),
        "tampered": {"sent": tampered["sent"], "rejected": tampered["counted"],
                     "delivered": tampered["delivered"]},
    }
