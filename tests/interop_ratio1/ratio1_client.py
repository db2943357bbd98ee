"""Runs in the ratio1 3.5.60 venv: drives ``pye2 sim`` nodes with the incumbent client, prints JSON lines.

argv: host port root encrypt(0|1). Prints {"address": ...}, waits for a line on
stdin (the test allows the address, or not), then walks: node seen and peered,
custom code deployed and answering, update, archive. Each step's outcome is a
JSON line; errors are reported, not raised.
"""

import json
import sys
import time

from ratio1 import Session


def say(**kw):
    print(json.dumps(kw), flush=True)


def main():
    host, port, root, encrypt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
    sess = Session(host=host, port=port, user="u", pwd="p", root_topic=root, secured=False, run_dauth=False,
                   auto_configuration=False, encrypt_comms=encrypt, silent=True, use_home_folder=True,
                   name="r1-interop")
    say(address=sess.get_client_address())
    node = sys.stdin.readline().strip()
    try:
        ok = sess.wait_for_node(node, timeout=30, verbose=False)
        time.sleep(3)  # a few heartbeats: whether the node allows us
        say(step="seen", ok=bool(ok), peered=node in sess.get_allowed_nodes())

        def code(plugin):
            return 6 * 7

        got = []
        pipeline = sess.create_pipeline(node=node, name="r1pipe", data_source="Void")
        instance = pipeline.create_custom_plugin_instance(
            instance_id="r1c", custom_code=code, config={"PROCESS_DELAY": 1},
            on_data=lambda p, result, data: got.append(result))  # ratio1 calls (pipeline, result, payload)
        pipeline.deploy(timeout=15)
        deadline = time.time() + 20
        while not got and time.time() < deadline:
            time.sleep(0.2)
        say(step="custom_code", ok=bool(got), result=got[0] if got else None)
        instance.update_instance_config(config={"PROCESS_DELAY": 2})
        pipeline.deploy(timeout=15)
        say(step="update", ok=pipeline.was_last_operation_successful)
        pipeline.close(timeout=15)
        say(step="archive", ok=pipeline.was_last_operation_successful)
    except Exception as exc:  # noqa: BLE001 - report any failure as a step, do not hide it
        say(step="error", ok=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        sess.close()
        say(step="done")


if __name__ == "__main__":
    main()
