"""The requirements document's decentralized prime search, as written there.

The initiator (``chain_dist_example_initiator.py``) runs on node ``e2id``,
asks the network for ``N_WORKERS`` workers, starts ``chain_dist_example_worker.py``
on each, collects the primes they find and, after ``MAX_RUN_TIME`` seconds,
archives the workers' pipelines and its own.

Runs on a simulated network by default (60 simulated seconds take a moment).
For a real network: ``PYE2_TRANSPORT=mqtt://user:pwd@host:1883 PYE2_NODE=<node id>
python examples/distributed_primes/chain_dist_local.py``.
"""
import os
from pathlib import Path

from pye2 import Session, Pipeline, code_to_base64

HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("PYE2_TRANSPORT") or (None if os.environ.get("PYE2_HOST") else "sim://")

SERVER_CONFIG = {
    'host': os.environ.get("PYE2_HOST"),
    'port': int(os.environ.get("PYE2_PORT", 1883)),
    'user': os.environ.get("PYE2_USER"),
    'pwd': os.environ.get("PYE2_PASS"),
}


def instance_on_data(pipeline : Pipeline, custom_code_result: dict, data: dict):
  """
  in `custom_code_result` we have the output of our custom code
  in `data` we have the entire payload
  """
  pipeline.P(custom_code_result)
  return


if __name__ == '__main__':

  WORKER_CODE_PATH = HERE / 'chain_dist_example_worker.py'
  INITIATOR_CODE_PATH = HERE / 'chain_dist_example_initiator.py'

  with open(WORKER_CODE_PATH, 'rt') as fh:
    worker_code = fh.read()

  e2id = os.environ.get("PYE2_NODE", "sim-node-1") # provide a known EE id
  sess = Session(**SERVER_CONFIG, transport=BROKER, silent=True)
  sess.connect()

  listener_params = {k.upper(): v for k, v in SERVER_CONFIG.items()}
  listener_params["PASS"] = listener_params["PWD"]
  listener_params["TOPIC"] = "lummetry/payloads"

  pipeline = sess.create_pipeline(
      e2id=e2id,
      name='test_dist_jobs',
      data_source='IotQueueListener', # this DCT allows data acquisition from MQTT brokers
      config={
          'STREAM_CONFIG_METADATA': listener_params,
          "RECONNECTABLE": True,
      },
  )


  pipeline.start_custom_plugin(
      instance_id='inst02',
      plain_code_path=INITIATOR_CODE_PATH,
      params={
        'MAX_TRIES': 10, # this will be used within plugin as `plugin.cfg_max_tries`
        'MAX_RUN_TIME': 60, # this will be used within plugin as `plugin.cfg_max_run_time`
        'N_WORKERS': 2, # this will be used within plugin as `plugin.cfg_n_workers`

        # this will be used within plugin as `plugin.cfg_worker_code`
        'WORKER_CODE': code_to_base64(worker_code)
        },
      on_data=instance_on_data,
      process_delay=0.2
  )

  sess.run(wait=True, close_session=True, close_pipelines=True)
