"""``pye2 demo``: the requirements document's three scenarios on a simulated network.

Starts a :class:`~pye2_transport_memory.network.SimulatedNetwork` in-process
(virtual clock, so minutes of network time take seconds) and drives it only
through the public client API (``pye2.Session``):

1. "Hello world": discover the nodes and their CPUs from heartbeats.
2. The decentralized prime search: an initiator pipeline on one node obtains
   workers, deploys the worker code to them, collects the primes, then
   archives the workers and itself.
3. Real-time person tracking on a (synthetic) video, saving the annotated
   frames as JPEG files.

Everything produced is written to an output folder named at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

Progress = Callable[[str], None]


def _tutorial_code(name: str) -> str:
    return resources.files("pye2_transport_memory.tutorial").joinpath(name).read_text("utf-8")


def run_demo(output: Path, *, nodes: int = 3, seed: int = 0, progress: Progress = print) -> dict[str, Any]:
    """Run the three scenarios; returns a summary (also written as ``summary.json``)."""
    from pye2 import Payload, Pipeline, Session, code_to_base64
    from pye2.wire import Identity
    from pye2_transport_memory.network import SimulatedNetwork

    output.mkdir(parents=True, exist_ok=True)
    frames_dir = output / "person_tracking"
    frames_dir.mkdir(exist_ok=True)
    summary: dict[str, Any] = {"nodes": {}, "primes": {}, "frames": [], "stats": {}}

    with SimulatedNetwork(nodes=nodes, seed=seed) as net:
        progress(f"simulated network: {nodes} nodes on an in-memory broker, virtual clock (seed {seed})")

        # -- 1. hello world -----------------------------------------------------------------
        def on_hb(session: Session, e2id: str, data: dict[str, Any]) -> None:
            if e2id not in summary["nodes"]:
                progress(f"  {e2id} has a {data['CPU'].strip()} ({data.get('EE_ADDR', '?')})")
            summary["nodes"][e2id] = {"cpu": data["CPU"].strip(), "address": data.get("EE_ADDR"),
                                      "pipelines": [c.get("NAME") for c in data.get("CONFIG_STREAMS", [])]}

        sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(),
                       name="pye2-demo", on_heartbeat=on_hb)
        progress("[1/3] hello world: listening to heartbeats for 15 s of network time")
        sess.connect()
        sess.sleep(15)
        progress(f"      {len(sess.get_active_nodes())} node(s) online: {', '.join(sess.get_active_nodes())}")

        # -- 2. distributed primes ---------------------------------------------------------------
        progress("[2/3] decentralized prime search: initiator on sim-node-1, 2 workers, 60 s of network time")
        last: dict[str, Any] = {}

        def on_result(pipeline: Pipeline, result: Any, data: Payload) -> None:
            if isinstance(result, dict) and "RESULTS" in result:
                now = pipeline.session.clock.time()  # type: ignore[union-attr]
                if result["STATUS"] == "DONE" or now - last.get("shown", 0.0) >= 10:
                    last["shown"] = now
                    counts = {k: len(v) for k, v in result["RESULTS"].items()}
                    progress(f"      {result['STATUS']}: primes found per worker {counts}")
                last["result"] = result

        initiator = sess.create_pipeline(e2id=net.node_ids[0], name="test_dist_jobs",
                                         data_source="IotQueueListener", config={"RECONNECTABLE": True})
        initiator.start_custom_plugin(
            instance_id="inst02", plain_code=_tutorial_code("prime_initiator.code"),
            params={"MAX_TRIES": 10, "MAX_RUN_TIME": 60, "N_WORKERS": 2,
                    "WORKER_CODE": code_to_base64(_tutorial_code("prime_worker.code"))},
            on_data=on_result, process_delay=0.2)
        sess.wait(lambda: initiator.closed, 300)
        result = last.get("result") or {}
        summary["primes"] = result.get("RESULTS", {})
        progress(f"      job {result.get('STATUS', 'not finished')}; pipelines left on the nodes: "
                 f"{sorted({p for n in net.nodes.values() for p in n.pipelines} - {'admin_pipeline'}) or 'none'}")

        # -- 3. person tracking ---------------------------------------------------------------------------
        progress("[3/3] real-time person tracking on a synthetic video: 30 s of network time")

        def on_frame(pipeline: Pipeline, payload: Payload) -> None:
            image = payload.get_image_as_PIL()
            if image is None:
                return
            path = frames_dir / f"img_{len(summary['frames'])}.jpeg"
            image.save(path)
            people = [o for o in payload.get("OBJECTS", []) if o.get("TYPE") == "person"]
            summary["frames"].append({"file": path.name, "people": len(people)})
            if len(summary["frames"]) % 10 == 0:
                progress(f"      {len(summary['frames'])} frames saved")

        tracking = sess.create_pipeline(e2id=net.node_ids[-1], name="RealTimePersonTracking",
                                        data_source="VideoFile", config={"URL": "sim://demo-street"})
        tracking.start_plugin_instance(signature="OBJECT_TRACKING_01", instance_id="EXAMPLE_OBJECT_TRACKING",
                                       params={"OBJECT_TYPE": ["person"]}, on_data=on_frame)
        sess.sleep(30)
        tracking.close().wait(10)
        summary["stats"] = sess.stats.as_dict()
        sess.close()

    (output / "nodes.json").write_text(json.dumps(summary["nodes"], indent=2), "utf-8")
    (output / "primes.json").write_text(json.dumps(summary["primes"], indent=2), "utf-8")
    (output / "summary.json").write_text(json.dumps(summary, indent=2), "utf-8")
    progress(f"done: {len(summary['nodes'])} nodes, "
             f"{sum(len(v) for v in summary['primes'].values())} primes, {len(summary['frames'])} frames")
    progress(f"output written to {output.resolve()}")
    return summary
