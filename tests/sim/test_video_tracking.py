"""Synthetic video, the VideoFile source and the vision plugins against ground truth.

The tracker only sees pixels; the generator's ground truth is used here to
grade it. A tiny real ``NodeApi`` (no mocks) supplies clock and identity.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from pye2.errors import ConfigError
from pye2_transport_memory.node.images import decode_image, encode_image_fields
from pye2_transport_memory.node.plugin_base import (
    DataSourceRegistry,
    InputItem,
    PluginContext,
    PluginRegistry,
    SimPlugin,
)
from pye2_transport_memory.node.plugins.catalog import default_plugins, default_sources
from pye2_transport_memory.node.plugins.vision import (
    ObjectTracking01,
    ViewScene01,
    _components,
    detect_objects,
    iou,
)
from pye2_transport_memory.node.video import SyntheticVideo, VideoFileSource

TUTORIAL_URL = "http://commondatastorage.googleapis.com/gtv-videos-bucket/sample/ForBiggerBlazes.mp4"


class FakeNode:
    """A NodeApi with a settable clock."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self._rng = random.Random(1)
        self.logs: list[str] = []

    @property
    def alias(self) -> str:
        return "video-node"

    @property
    def address(self) -> str:
        return "aixp_VIDEO"

    @property
    def rng(self) -> random.Random:
        return self._rng

    def time(self) -> float:
        return self.now

    def log(self, message: str) -> None:
        self.logs.append(message)

    def peers(self) -> list[Mapping[str, Any]]:
        return []

    def send_command(self, target: str, action: str, payload: Any) -> None:
        raise AssertionError("vision plugins send no commands")

    def subscribe(self, address: str, handler: Callable[[str, bytes], None]) -> Callable[[], None]:
        return lambda: None

    def publish_payload(self, body: Mapping[str, Any], *, pipeline: str, signature: str, instance_id: str) -> None:
        raise AssertionError("vision plugins publish through process()")


def make(cls: type[SimPlugin], node: FakeNode, params: dict[str, Any]) -> Any:
    ctx = PluginContext(node=node, pipeline="RealTimePersonTracking", signature=cls.SIGNATURE,
                        instance_id="EXAMPLE_OBJECT_TRACKING", pipeline_config={}, config={**cls.DEFAULTS, **params})
    return cls(ctx)


def source(node: FakeNode, **config: Any) -> VideoFileSource:
    src = VideoFileSource(node, "RealTimePersonTracking", {"NAME": "RealTimePersonTracking", "TYPE": "VideoFile",
                                                           "URL": TUTORIAL_URL, **config})
    src.start()
    return src


def isolated(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]]) -> bool:
    """No other object within 2 px (touching blobs merge, as they would for a real detector)."""
    x0, y0, x1, y1 = box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2
    return all(o[2] <= x0 or o[0] >= x1 or o[3] <= y0 or o[1] >= y1 for o in others)


# -- the generator ---------------------------------------------------------------------------------

def test_video_is_deterministic_and_seeded_by_url() -> None:
    a, b, c = SyntheticVideo(TUTORIAL_URL), SyntheticVideo(TUTORIAL_URL), SyntheticVideo(TUTORIAL_URL + "?x")
    for i in (0, 17, 499):
        assert np.array_equal(a.frame(i), b.frame(i))
        assert a.ground_truth(i) == b.ground_truth(i)
    assert not np.array_equal(a.frame(3), c.frame(3))
    frame = a.frame(0)
    assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
    assert a.frame_count == 500 and a.fps == 25.0


def test_frames_do_not_depend_on_python_hash_seed() -> None:
    script = ("import hashlib\nfrom pye2_transport_memory.node.video import SyntheticVideo\n"
              f"print(hashlib.sha256(SyntheticVideo({TUTORIAL_URL!r}).frame(42).tobytes()).hexdigest())\n")
    digests = {
        subprocess.run([sys.executable, "-c", script], env={"PYTHONHASHSEED": seed, "PATH": ""},
                       capture_output=True, text=True, check=True).stdout.strip()
        for seed in ("1", "2")
    }
    local = hashlib.sha256(SyntheticVideo(TUTORIAL_URL).frame(42).tobytes()).hexdigest()
    assert digests == {local}


def test_ground_truth_has_people_and_cars_inside_the_frame() -> None:
    video = SyntheticVideo(TUTORIAL_URL)
    kinds: set[str] = set()
    for i in range(0, 500, 10):
        for kind, track_id, (x0, y0, x1, y1) in video.ground_truth(i):
            kinds.add(kind)
            assert track_id >= 1
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
            if kind == "person":
                assert y1 - y0 > x1 - x0 or x0 == 0 or x1 == 640  # upright unless cut by the border
    assert kinds == {"person", "car"}


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        SyntheticVideo(TUTORIAL_URL, width=10)
    with pytest.raises(ConfigError):
        SyntheticVideo(TUTORIAL_URL, fps=0)
    video = SyntheticVideo(TUTORIAL_URL, frame_count=5)
    with pytest.raises(ConfigError):
        video.frame(5)
    with pytest.raises(ConfigError):
        video.ground_truth(-1)


# -- detection and tracking --------------------------------------------------------------------------

def test_components_are_eight_connected() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # a diagonal line: one component
    mask[4:6, 5:8] = True
    assert sorted(_components(mask)) == [(0, 0, 3, 3, 3), (5, 4, 8, 6, 6)]
    assert _components(np.zeros((3, 3), dtype=bool)) == []


def test_plain_background_has_no_detections() -> None:
    video = SyntheticVideo("empty street", n_people=0, n_cars=0)
    assert video.ground_truth(0) == []
    assert detect_objects(video.frame(0)) == []


@pytest.mark.parametrize("url", [TUTORIAL_URL, "file:///videos/street.mp4", "rtsp://cam-7/stream"])
def test_tracking_matches_ground_truth_with_stable_ids(url: str) -> None:
    node = FakeNode()
    src = source(node, URL=url)
    tracker = make(ObjectTracking01, node, {"OBJECT_TYPE": ["person"]})
    video = src.video
    assert video is not None
    checked, previous = 0, {}  # gt track id -> tracker id on the previous frame (when isolated)
    for _ in range(150):
        [item] = src.poll()
        index = item.metadata["frame_current"]
        payload = tracker.process([item])
        assert payload is not None
        assert {o["TYPE"] for o in payload["OBJECTS"]} <= {"person"}
        assert payload["NR_OBJECTS"] == len(payload["OBJECTS"]) == payload["COUNTS"]["person"]
        found = [((o["TLBR_POS"][1], o["TLBR_POS"][0], o["TLBR_POS"][3], o["TLBR_POS"][2]), o["TRACK_ID"])
                 for o in payload["OBJECTS"]]
        truth = video.ground_truth(index)
        current = {}
        for kind, gt_id, box in truth:
            if kind != "person" or not isolated(box, [b for _, t, b in truth if t != gt_id]):
                continue
            score, track_id = max(((iou(box, b), tid) for b, tid in found), default=(0.0, None))
            assert score >= 0.5, (url, index, box, found)
            checked += 1
            current[gt_id] = track_id
            if gt_id in previous:
                assert previous[gt_id] == track_id, (url, index, gt_id)
        previous = current
    assert checked >= 150, "the scene should show isolated people in most frames"


def test_tracking_all_types_and_annotated_image() -> None:
    node = FakeNode()
    src = source(node)
    tracker = make(ObjectTracking01, node, {})
    for _ in range(40):
        [item] = src.poll()
        payload = tracker.process([item])
    assert payload["OBJECT_TYPE"] == ["person", "car"]
    kinds = {o["TYPE"] for o in payload["OBJECTS"]}
    assert kinds == {"person", "car"}
    assert all(0 < o["PROB_PRC"] < 1 and o["APPEARANCES"] >= 1 for o in payload["OBJECTS"])
    annotated = payload["IMG"]
    assert annotated.shape == (360, 640, 3)
    top, left = payload["OBJECTS"][0]["TLBR_POS"][:2]
    assert tuple(annotated[top, left]) in {(255, 255, 0), (0, 255, 0)}  # the drawn box outline
    out = encode_image_fields(payload)
    assert (out["IMG_HEIGHT"], out["IMG_WIDTH"], out["IMG_IN_PAYLOAD"]) == (360, 640, True)
    assert decode_image(out["IMG"]).shape == (360, 640, 3)


def test_unknown_object_types_find_nothing_and_no_image_means_no_payload() -> None:
    node = FakeNode()
    tracker = make(ObjectTracking01, node, {"OBJECT_TYPE": ["giraffe"], "SEND_ONLY_WITH_OBJECTS": True})
    frame = SyntheticVideo(TUTORIAL_URL).frame(0)
    assert tracker.process([InputItem(type="IMG", img=frame)]) is None
    assert tracker.process([InputItem(type="STRUCT_DATA", struct_data={})]) is None


# -- the data source ----------------------------------------------------------------------------------

def test_source_reads_in_order_with_metadata() -> None:
    src = source(FakeNode())
    items = [src.poll()[0] for _ in range(3)]
    assert [i.metadata["frame_current"] for i in items] == [0, 1, 2]
    assert items[0].type == "IMG"
    assert items[0].metadata == {"frame_h": 360, "frame_w": 640, "frame_count": 500, "frame_current": 0,
                                 "fps": 25.0}
    assert np.array_equal(items[2].img, SyntheticVideo(TUTORIAL_URL).frame(2))


@pytest.mark.parametrize("recon, expected, finished", [
    (True, [2, 0, 1, 2, 0], False),
    ("YES", [2, 0, 1, 2, 0], False),
    ("KEEP_ALIVE", [2, None, None, None, None], False),
    (False, [2, None, None, None, None], True),
])
def test_end_of_file_follows_reconnectable(recon: Any, expected: list[int | None], finished: bool) -> None:
    src = source(FakeNode(), RECONNECTABLE=recon, STREAM_CONFIG_METADATA={"SIM_FRAME_COUNT": 3})
    src.poll(), src.poll()
    got = []
    for _ in range(5):
        items = src.poll()
        got.append(items[0].metadata["frame_current"] if items else None)
    assert got == expected
    assert src.finished is finished


def test_live_feed_follows_the_clock() -> None:
    node = FakeNode()
    src = source(node, LIVE_FEED=True, SIM_FPS=10.0)
    assert src.poll()[0].metadata["frame_current"] == 0
    node.now += 2.05
    assert src.poll()[0].metadata["frame_current"] == 20


# -- VIEW_SCENE_01 and the catalog ---------------------------------------------------------------------

def test_view_scene_sends_witnesses_up_to_the_limit_then_on_command() -> None:
    node = FakeNode()
    plugin = make(ViewScene01, node, {"NR_WITNESSES": 2})
    src = source(node)
    sent = [plugin.process(src.poll()) for _ in range(3)]
    assert [p["IMG_WITNESS_ID"] if p else None for p in sent] == [1, 2, None]
    assert sent[0]["STATUS"] == "Base video camera witness" and sent[0]["IMG"].shape == (360, 640, 3)
    assert plugin.process([]) is None
    plugin.on_command({"WHY": "check"})
    forced = plugin.process(src.poll())
    assert forced["IMG_WITNESS_ID"] == 3 and forced["COMMAND_PARAMS"] == {"WHY": "check"}
    assert plugin.process(src.poll()) is None


def test_catalog_lists_the_simulated_plugins_and_sources() -> None:
    plugins = PluginRegistry(default_plugins())
    for signature in ("CUSTOM_EXEC_01", "REST_CUSTOM_EXEC_01", "OBJECT_TRACKING_01", "VIEW_SCENE_01",
                      "SIMPLE_COUNTER", "SIMPLE_ECHO"):
        assert plugins.get(signature) is not None, signature
    sources = DataSourceRegistry(default_sources())
    assert sources.get("videofile") is VideoFileSource and sources.get("VideoStream") is VideoFileSource
