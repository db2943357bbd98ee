"""The requirements document's real-time person tracking: save annotated frames.

On the simulated network the video is synthetic (moving people and cars); the
node's OBJECT_TRACKING_01 finds the people and returns frames with boxes,
saved as ``img_<n>.jpeg`` in the current folder. For a real network:
``PYE2_TRANSPORT=mqtt://user:pwd@host:1883 PYE2_NODE=<node id> python examples/person_tracking.py``.
"""
import os

from pye2 import Session, Pipeline, Payload

BROKER = os.environ.get("PYE2_TRANSPORT") or (None if os.environ.get("PYE2_HOST") else "sim://")
val = 0


def on_hb(session: Session, e2id: str, data: dict):
  print(e2id, " has a ", data['CPU'])


def on_instance_data(pipeline : Pipeline, payload: Payload):
  global val
  image = payload.get_image_as_PIL()
  if image is not None:
    # if we received an image, save it with at `./img_#.jpeg`
    image.save("img_{}.jpeg".format(val))
    val += 1


if __name__ == '__main__':
  sess = Session(
    transport=BROKER,
    on_heartbeat=on_hb
  )

  # Notice that we call `sess.connect()` before `sess.run()`. That is because in order
  # to create pipelines and to start plugin instances, we need to be connected to the session
  sess.connect()

  # Create a pipeline that will acquire data from a Video File located at the given URL
  # The URL can be a path to a local file or a link to a downloadable file
  pipeline = sess.create_pipeline(
    e2id=os.environ.get("PYE2_NODE", "sim-node-1"),
    name="RealTimePersonTracking",
    data_source="VideoFile",
    config={
      "URL": "http://commondatastorage.googleapis.com/gtv-videos-bucket/sample/ForBiggerBlazes.mp4"
    },
  )

  # Create an object_tracking plugin instance that will track only the persons in the video
  instance = pipeline.start_plugin_instance(
    signature="OBJECT_TRACKING_01",
    instance_id="EXAMPLE_OBJECT_TRACKING",
    params={
      "OBJECT_TYPE": ["person"]
    },
    on_data=on_instance_data,
  )

  sess.run(wait=60)
  print("saved", val, "images")
