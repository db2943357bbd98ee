"""Vision plugins of the simulated node: ``OBJECT_TRACKING_01`` and ``VIEW_SCENE_01``.

The tracker really looks at the pixels (it never reads the video generator's
ground truth): a colour rule per object type gives a mask, connected
components of the mask (run-length labelling in numpy, 8-connected) give
boxes, and a greedy IoU tracker keeps track ids stable across frames. The
colour rules match the families :mod:`pye2_transport_memory.node.video`
draws (people red/magenta, cars blue), which keep well clear of its
desaturated background.

Payloads carry the annotated frame as a numpy array in ``IMG``; the node
encodes it (:func:`pye2_transport_memory.node.images.encode_image_fields`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimPlugin

__all__ = ["Detection", "IouTracker", "ObjectTracking01", "ViewScene01", "detect_objects", "iou"]

logger = logging.getLogger(__name__)

#: object type -> (dominant channel, other channels, minimum level, margins over the others)
_COLOUR_RULES: dict[str, tuple[int, tuple[int, int], int, tuple[int, int]]] = {
    "person": (0, (1, 2), 120, (70, 30)),
    "car": (2, (0, 1), 120, (70, 30)),
}
KNOWN_TYPES = tuple(_COLOUR_RULES)
_LABEL_COLOURS = {"person": (255, 255, 0), "car": (0, 255, 0)}


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: type, box ``(x0, y0, x1, y1)`` end exclusive, probability."""

    type: str
    box: tuple[int, int, int, int]
    prob: float


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mask(img: Any, kind: str) -> Any:
    main, others, level, margins = _COLOUR_RULES[kind]
    px = img.astype(np.int16)
    m = px[:, :, main]
    return (m >= level) & (m - px[:, :, others[0]] >= margins[0]) & (m - px[:, :, others[1]] >= margins[1])


def _components(mask: Any) -> list[tuple[int, int, int, int, int]]:
    """8-connected components of a boolean mask: ``(x0, y0, x1, y1, area)`` each.

    Works on horizontal runs, so the Python loop is over runs, not pixels.
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    diff = np.diff(padded, axis=1)
    starts_r, starts_c = np.nonzero(diff == 1)
    _, ends_c = np.nonzero(diff == -1)  # same row order as starts
    runs = list(zip(starts_r.tolist(), starts_c.tolist(), ends_c.tolist()))  # (row, start, end excl.)
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev: list[int] = []  # run ids on the previous row
    row_ids: list[int] = []
    current_row = -1
    for idx, (row, s, e) in enumerate(runs):
        if row != current_row:
            prev = row_ids if row == current_row + 1 else []
            row_ids, current_row = [], row
        for j in prev:
            _, ps, pe = runs[j]
            if ps <= e and s <= pe:  # 8-connectivity: touching diagonally counts
                ra, rb = find(idx), find(j)
                if ra != rb:
                    parent[ra] = rb
        row_ids.append(idx)
    boxes: dict[int, list[int]] = {}
    for idx, (row, s, e) in enumerate(runs):
        root = find(idx)
        b = boxes.get(root)
        if b is None:
            boxes[root] = [s, row, e, row + 1, e - s]
        else:
            b[0], b[1], b[2], b[3] = min(b[0], s), min(b[1], row), max(b[2], e), max(b[3], row + 1)
            b[4] += e - s
    return [tuple(b) for b in boxes.values()]  # type: ignore[misc]


def detect_objects(img: Any, types: tuple[str, ...] = KNOWN_TYPES, *, min_area: int = 30) -> list[Detection]:
    """Detect objects of the given types in an RGB frame (unknown types find nothing)."""
    if not hasattr(img, "ndim") or img.ndim != 3 or img.shape[2] < 3:
        return []
    out = []
    for kind in types:
        if kind not in _COLOUR_RULES:
            continue
        for x0, y0, x1, y1, area in _components(_mask(img, kind)):
            if area < min_area:
                continue
            fill = area / float((x1 - x0) * (y1 - y0))
            out.append(Detection(kind, (x0, y0, x1, y1), round(min(0.99, 0.55 + 0.45 * fill), 2)))
    return out


@dataclass
class _Track:
    track_id: int
    type: str
    box: tuple[int, int, int, int]
    appearances: int = 1
    missed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class IouTracker:
    """Greedy IoU matching per type; a track dies after ``max_missed`` frames unseen."""

    def __init__(self, *, min_iou: float = 0.3, max_missed: int = 3) -> None:
        self.min_iou, self.max_missed = min_iou, max_missed
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, detections: list[Detection]) -> list[tuple[Detection, _Track]]:
        """Assign a track to every detection; returns the pairs in detection order."""
        pairs = sorted(
            ((iou(d.box, t.box), di, ti) for di, d in enumerate(detections) for ti, t in enumerate(self._tracks)
             if d.type == t.type),
            reverse=True,
        )
        assigned: dict[int, _Track] = {}
        used: set[int] = set()
        for score, di, ti in pairs:
            if score < self.min_iou:
                break
            if di in assigned or ti in used:
                continue
            track = self._tracks[ti]
            track.box, track.missed = detections[di].box, 0
            track.appearances += 1
            assigned[di] = track
            used.add(ti)
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for di, det in enumerate(detections):
            if di not in assigned:
                track = _Track(self._next_id, det.type, det.box)
                self._next_id += 1
                self._tracks.append(track)
                assigned[di] = track
        return [(det, assigned[di]) for di, det in enumerate(detections)]


def _annotate(img: Any, items: list[tuple[Detection, _Track]]) -> Any:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(np.ascontiguousarray(img[:, :, :3]))
    draw = ImageDraw.Draw(pil)
    for det, track in items:
        x0, y0, x1, y1 = det.box
        colour = _LABEL_COLOURS.get(det.type, (255, 255, 255))
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=2)
        draw.text((x0 + 2, max(0, y0 - 11)), f"{det.type} {track.track_id}", fill=colour)
    return np.asarray(pil)


def _types(value: Any) -> tuple[str, ...]:
    if value is None or value == []:
        return KNOWN_TYPES
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
    return tuple(str(v).strip().lower() for v in items)


class ObjectTracking01(SimPlugin):
    """``OBJECT_TRACKING_01``: detects and tracks ``OBJECT_TYPE`` objects, returns the annotated frame.

    Payload: ``OBJECTS`` (``TYPE``, ``TRACK_ID``, ``TLBR_POS`` [top, left,
    bottom, right], ``PROB_PRC``, ``APPEARANCES``), ``NR_OBJECTS``,
    ``COUNTS`` per type, ``OBJECT_TYPE`` and ``IMG`` (annotated frame).
    """

    SIGNATURE = "OBJECT_TRACKING_01"
    VERSION = "1.0.0"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **SimPlugin.DEFAULTS,
        "OBJECT_TYPE": list(KNOWN_TYPES),
        "MIN_AREA": 30,
        "TRACKER_MIN_IOU": 0.3,
        "TRACKER_MAX_MISSED": 3,
        "SEND_ONLY_WITH_OBJECTS": False,
        "ADD_ORIGINAL_IMAGE": False,
    }

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.tracker = IouTracker(min_iou=float(self.config.get("TRACKER_MIN_IOU", 0.3)),
                                  max_missed=int(self.config.get("TRACKER_MAX_MISSED", 3)))

    def process(self, inputs: list[InputItem]) -> dict[str, Any] | None:
        """Track the first image of this iteration."""
        img = next((item.img for item in inputs if item.img is not None), None)
        if img is None:
            return None
        types = _types(self.config.get("OBJECT_TYPE"))
        unknown = [t for t in types if t not in KNOWN_TYPES]
        if unknown:
            logger.debug("OBJECT_TYPE entries %s are not known to the simulator", unknown)
        detections = detect_objects(img, types, min_area=int(self.config.get("MIN_AREA", 30)))
        items = self.tracker.update(detections)
        if not items and self.config.get("SEND_ONLY_WITH_OBJECTS"):
            return None
        objects = [{
            "TYPE": det.type, "TRACK_ID": track.track_id,
            "TLBR_POS": [det.box[1], det.box[0], det.box[3], det.box[2]],
            "PROB_PRC": det.prob, "APPEARANCES": track.appearances,
        } for det, track in items]
        counts = {t: sum(1 for o in objects if o["TYPE"] == t) for t in types if t in KNOWN_TYPES}
        payload: dict[str, Any] = {
            "OBJECT_TYPE": list(types), "OBJECTS": objects, "NR_OBJECTS": len(objects), "COUNTS": counts,
            "IMG": _annotate(img, items),
        }
        if self.config.get("ADD_ORIGINAL_IMAGE"):
            payload["IMG_ORIG"] = img
        return payload


class ViewScene01(SimPlugin):
    """``VIEW_SCENE_01``: a witness image of the stream every ``PROCESS_DELAY`` seconds.

    Sends at most ``NR_WITNESSES`` images; an ``INSTANCE_COMMAND`` forces one
    more (its content is echoed as ``COMMAND_PARAMS``).
    """

    SIGNATURE = "VIEW_SCENE_01"
    VERSION = "2.0.2"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **SimPlugin.DEFAULTS,
        "PROCESS_DELAY": 1,
        "ALLOW_EMPTY_INPUTS": False,
        "NR_WITNESSES": 1200,
    }

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.witnesses = 0
        self._forced: Any = None
        self._force = False

    def on_command(self, command: Any) -> Any:
        """Send the next image even past ``NR_WITNESSES``."""
        self._force, self._forced = True, command
        return None

    def process(self, inputs: list[InputItem]) -> dict[str, Any] | None:
        """The current frame as a witness image."""
        img = next((item.img for item in inputs if item.img is not None), None)
        limit = int(self.config.get("NR_WITNESSES", 1200))
        if img is None or (self.witnesses >= limit and not self._force):
            return None
        self.witnesses += 1
        payload: dict[str, Any] = {
            "STATUS": "Base video camera witness", "IMG": img,
            "IMG_WITNESS_ID": self.witnesses, "IMG_REMAINING_WITNESSES": max(0, limit - self.witnesses),
        }
        if self._force and self._forced is not None:
            payload["COMMAND_PARAMS"] = self._forced
        self._force, self._forced = False, None
        return payload
