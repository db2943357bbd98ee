"""The requirements document's "Hello world!": list the nodes and their CPUs.

Runs on a simulated network by default. For a real broker:
``python examples/hello_world.py mqtt://user:pwd@host:1883`` (or set PYE2_TRANSPORT,
or PYE2_HOST/PYE2_PORT/PYE2_USER/PYE2_PASS).
"""

import os
import sys

from pye2 import Session

BROKER = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PYE2_TRANSPORT") or (
  None if os.environ.get("PYE2_HOST") else "sim://")


def on_hb(session: Session, e2id: str, data: dict):
  print(e2id, " has a ", data['CPU'])
  return


if __name__ == '__main__':
  sess = Session(
    transport=BROKER,
    on_heartbeat=on_hb
  )
  sess.run(wait=10)
