"""Deterministic synthetic video for ``VideoFile`` / ``VideoStream`` pipelines (DECISIONS 5).

Nothing is downloaded: the pipeline ``URL`` seeds a generator (SHA-256 of the
URL, so runs and machines agree) that draws a street scene: a textured,
desaturated background (sky, buildings, sidewalks, a road with lane marks),
moving **cars** (wide shapes in a blue family) on the road lanes and walking
**people** (upright figures: head, torso, two legs, in a red/magenta family)
drawn in front. Every frame is random-access and its objects' boxes are
known (:meth:`SyntheticVideo.ground_truth`), so detection and tracking
plugins can be checked against ground truth.

Frames are H x W x 3 ``uint8`` RGB numpy arrays. The colour families are kept
apart from the background by construction (the background's channels never
differ by more than about 60), which is what the simulated detector relies
on. Needs numpy (``pye2[images]``).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pye2.errors import ConfigError
from pye2_transport_memory.node.plugin_base import InputItem, NodeApi, SimDataSource

__all__ = ["KINDS", "Box", "GroundTruth", "SyntheticVideo", "VideoFileSource"]

logger = logging.getLogger(__name__)

KINDS = ("person", "car")
Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, end exclusive."""
GroundTruth = tuple[str, int, Box]
"""``(object type, track id, box)``."""

_NOISE_BANK = 4
_NOISE_AMPLITUDE = 5


def stable_seed(text: str) -> int:
    """A 64-bit seed from text that does not depend on Python's hash randomisation."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class _Actor:
    kind: str
    track_id: int
    sprite: Any  # H x W x 3 uint8 colours
    mask: Any  # H x W bool, True where the object has pixels
    x_start: float
    vx: float
    y_top: float
    y_amp: float
    y_period: float
    y_phase: float
    gap: float

    def origin(self, frame: int, width: int) -> tuple[int, int]:
        """Top-left corner of the sprite at ``frame`` (x wraps around the frame)."""
        w = self.mask.shape[1]
        span = width + w + self.gap
        x = (self.x_start + self.vx * frame) % span - w
        y = self.y_top + self.y_amp * math.sin(2 * math.pi * frame / self.y_period + self.y_phase)
        return round(x), round(y)


def _person_sprite(rng: np.random.Generator, height: int) -> tuple[Any, Any]:
    h = max(12, height)
    w = max(5, round(h * rng.uniform(0.32, 0.40)))
    shirt = np.array([rng.integers(170, 241), rng.integers(10, 61), rng.integers(40, 111)], dtype=np.int16)
    head = shirt + np.array([15, 30, 15], dtype=np.int16)
    legs = (shirt * np.array([1.0, 0.5, 0.6])).astype(np.int16) - np.array([40, 0, 0], dtype=np.int16)
    mask = np.zeros((h, w), dtype=bool)
    colours = np.zeros((h, w, 3), dtype=np.int16)
    d = max(3, round(w * 0.6))
    yy, xx = np.mgrid[0:d, 0:w]
    head_mask = (yy - (d - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= (d / 2) ** 2
    mask[:d][head_mask] = True
    colours[:d][head_mask] = head
    torso_top, hips = d - 1, round(h * 0.62)
    mask[torso_top:hips, :] = True
    colours[torso_top:hips, :] = shirt
    leg_w = max(1, round(w * 0.36))
    for x0 in (0, w - leg_w):
        mask[hips:, x0:x0 + leg_w] = True
        colours[hips:, x0:x0 + leg_w] = legs
    return np.clip(colours, 0, 255).astype(np.uint8), mask


def _car_sprite(rng: np.random.Generator, height: int) -> tuple[Any, Any]:
    h = max(8, height)
    w = round(h * rng.uniform(2.2, 2.8))
    body = np.array([rng.integers(10, 61), rng.integers(40, 121), rng.integers(185, 251)], dtype=np.int16)
    window = (body * np.array([0.5, 0.6, 1.0])).astype(np.int16) - np.array([0, 0, 40], dtype=np.int16)
    mask = np.zeros((h, w), dtype=bool)
    colours = np.zeros((h, w, 3), dtype=np.int16)
    cabin_bottom = round(h * 0.45)
    c0, c1 = round(w * 0.22), round(w * 0.75)
    mask[:cabin_bottom, c0:c1] = True
    colours[:cabin_bottom, c0:c1] = body
    colours[2:cabin_bottom, c0 + 2:c1 - 2] = window
    mask[cabin_bottom:, :] = True
    colours[cabin_bottom:, :] = body
    # Wheels sit inside the body outline so the object's box is the body's box.
    r = max(2, round(h * 0.18))
    yy, xx = np.mgrid[0:h, 0:w]
    for cx in (int(w * 0.2), int(w * 0.8)):
        wheel = ((yy - (h - 1 - r)) ** 2 + (xx - cx) ** 2 <= r * r) & (yy < h - 1)
        colours[wheel] = (30, 30, 30)
    return np.clip(colours, 0, 255).astype(np.uint8), mask


def _interp_matrix(n: int, m: int) -> Any:
    """n x m matrix that linearly resamples m control points (16 px apart) to n pixels."""
    pos = np.arange(n) / 16.0
    lo = np.minimum(pos.astype(int), m - 2)
    frac = pos - lo
    mat = np.zeros((n, m))
    mat[np.arange(n), lo] = 1.0 - frac
    mat[np.arange(n), lo + 1] = frac
    return mat


def _background(rng: np.random.Generator, height: int, width: int) -> Any:
    """A street: sky, buildings, sidewalks and a road; every pixel low in saturation."""
    img = np.zeros((height, width, 3), dtype=np.int16)
    img[:] = (150, 165, 185)  # sky
    horizon, walk1, road0, road1 = (int(height * f) for f in (0.45, 0.45, 0.6, 0.9))
    x = 0
    while x < width:  # buildings of varying width, height and tint
        bw = int(rng.integers(width // 12, width // 5))
        top = int(height * rng.uniform(0.08, 0.35))
        tint = rng.choice([(140, 110, 90), (120, 120, 125), (160, 150, 130), (100, 95, 90)])
        img[top:horizon, x:x + bw] = tint
        for wy in range(top + 6, horizon - 8, 14):  # rows of windows
            img[wy:wy + 6, x + 4:x + bw - 4:10] = (70, 75, 85)
        x += bw
    img[walk1:road0] = (165, 160, 155)
    img[road0:road1] = (80, 80, 85)
    img[road1:] = (165, 160, 155)
    lane = (road0 + road1) // 2
    for x0 in range(0, width, 60):
        img[lane - 1:lane + 2, x0:x0 + 30] = (200, 185, 70)
    # Texture: a smooth brightness field shared by all channels (keeps hue)
    # plus a little per-channel grain.
    coarse = rng.normal(0.0, 12.0, size=(height // 16 + 2, width // 16 + 2))
    field = _interp_matrix(height, coarse.shape[0]) @ coarse @ _interp_matrix(width, coarse.shape[1]).T
    img += field.astype(np.int16)[:, :, None]
    img += rng.integers(-6, 7, size=(height, width, 3), dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


class SyntheticVideo:
    """A deterministic street video seeded by ``url``.

    Args:
        url: any text; equal URLs give identical videos.
        width, height: frame size in pixels.
        fps: nominal frame rate (reported in metadata, used by live feeds).
        frame_count: frames in the "file" (default 20 s worth).
        n_people, n_cars: number of actors (default drawn from the seed: 3-5 and 2-3).
    """

    def __init__(self, url: str, *, width: int = 640, height: int = 360, fps: float = 25.0,
                 frame_count: int | None = None, n_people: int | None = None, n_cars: int | None = None) -> None:
        if not isinstance(url, str):
            raise ConfigError(f"video URL must be text, not {type(url).__name__}")
        for name, value, low in (("width", width, 64), ("height", height, 64)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 4096:
                raise ConfigError(f"video {name} must be an int in [{low}, 4096], not {value!r}")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
            raise ConfigError(f"video fps must be in (0, 240], not {fps!r}")
        self.url = url
        self.width, self.height, self.fps = width, height, float(fps)
        self.frame_count = int(frame_count) if frame_count is not None else round(20 * self.fps)
        if self.frame_count <= 0:
            raise ConfigError(f"frame_count must be positive, not {frame_count!r}")
        self.seed = stable_seed(url)
        self._n_people, self._n_cars = n_people, n_cars
        self._actors: list[_Actor] | None = None
        self._bg: Any = None
        self._noise: list[Any] = []

    # -- scene ---------------------------------------------------------------
    def _build(self) -> list[_Actor]:
        if self._actors is not None:
            return self._actors
        rng = np.random.default_rng(self.seed)
        W, H = self.width, self.height
        self._bg = _background(rng, H, W)
        n_people = self._n_people if self._n_people is not None else int(rng.integers(3, 6))
        n_cars = self._n_cars if self._n_cars is not None else int(rng.integers(2, 4))
        actors: list[_Actor] = []
        lanes = (0.74, 0.88)
        for i in range(n_cars):  # cars first: people are drawn in front of them
            sprite, mask = _car_sprite(rng, int(H * rng.uniform(0.11, 0.14)))
            direction = 1 if i % 2 == 0 else -1
            actors.append(_Actor(
                "car", 0, sprite, mask, x_start=float(rng.uniform(0, W)),
                vx=direction * float(rng.uniform(2.0, 4.5)) * W / 640,
                y_top=H * lanes[i % 2] - mask.shape[0], y_amp=0.0, y_period=1.0, y_phase=0.0,
                gap=float(rng.uniform(0, W)),
            ))
        for _ in range(n_people):
            sprite, mask = _person_sprite(rng, int(H * rng.uniform(0.18, 0.26)))
            bottom = H * float(rng.uniform(0.55, 0.97))
            y_top = min(bottom, H - 4) - mask.shape[0]
            actors.append(_Actor(
                "person", 0, sprite, mask, x_start=float(rng.uniform(0, W)),
                vx=float(rng.choice([-1, 1]) * rng.uniform(0.6, 1.8)) * W / 640,
                y_top=y_top, y_amp=float(rng.uniform(0, H * 0.04)), y_period=float(rng.uniform(80, 200)),
                y_phase=float(rng.uniform(0, 2 * math.pi)), gap=float(rng.uniform(0, W / 2)),
            ))
        # Track ids follow drawing order; clamp vertical motion inside the frame.
        fixed = []
        for tid, a in enumerate(actors, start=1):
            h = a.mask.shape[0]
            amp = min(a.y_amp, max(0.0, a.y_top - 1), max(0.0, H - 1 - (a.y_top + h)))
            fixed.append(_Actor(a.kind, tid, a.sprite, a.mask, a.x_start, a.vx, a.y_top, amp, a.y_period,
                                a.y_phase, a.gap))
        self._actors = fixed
        noise_rng = np.random.default_rng(self.seed ^ 0x5EED)
        self._noise = [noise_rng.integers(-_NOISE_AMPLITUDE, _NOISE_AMPLITUDE + 1, size=(H, W, 3), dtype=np.int16)
                       for _ in range(_NOISE_BANK)]
        return fixed

    def _check(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < self.frame_count:
            raise ConfigError(f"frame index must be in [0, {self.frame_count}), not {index!r}")

    def _placements(self, index: int) -> list[tuple[_Actor, int, int, Box | None]]:
        """Each actor with its origin and the box of its visible pixels (None if off-frame)."""
        out = []
        for actor in self._build():
            x, y = actor.origin(index, self.width)
            h, w = actor.mask.shape
            x0, y0, x1, y1 = max(0, x), max(0, y), min(self.width, x + w), min(self.height, y + h)
            box: Box | None = None
            if x0 < x1 and y0 < y1:
                visible = actor.mask[y0 - y:y1 - y, x0 - x:x1 - x]
                rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
                if rows.size and cols.size:
                    box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
            out.append((actor, x, y, box))
        return out

    def frame(self, index: int) -> Any:
        """Frame ``index`` (0-based) as an H x W x 3 uint8 RGB array."""
        self._check(index)
        placements = self._placements(index)
        img = self._bg.astype(np.int16)
        for actor, x, y, box in placements:
            if box is None:
                continue
            h, w = actor.mask.shape
            x0, y0, x1, y1 = max(0, x), max(0, y), min(self.width, x + w), min(self.height, y + h)
            m = actor.mask[y0 - y:y1 - y, x0 - x:x1 - x]
            region = img[y0:y1, x0:x1]
            region[m] = actor.sprite[y0 - y:y1 - y, x0 - x:x1 - x][m]
        img += self._noise[int(index) % _NOISE_BANK]
        return np.clip(img, 0, 255).astype(np.uint8)

    def ground_truth(self, index: int) -> list[GroundTruth]:
        """Visible objects of frame ``index``: ``(type, track id, (x0, y0, x1, y1))``.

        Boxes bound the object's visible pixels (occlusion by objects drawn
        later is not subtracted; people are drawn after cars).
        """
        self._check(index)
        return [(a.kind, a.track_id, box) for a, _, _, box in self._placements(index) if box is not None]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() not in ("", "NO", "FALSE", "0", "NONE")
    return bool(value)


class VideoFileSource(SimDataSource):
    """``VideoFile`` / ``VideoStream`` data source over :class:`SyntheticVideo`.

    One ``IMG`` input per poll with metadata ``frame_h``, ``frame_w``,
    ``frame_count``, ``frame_current`` (0-based index of the delivered frame)
    and ``fps``. Frames are read in order; with ``LIVE_FEED`` the frame is the
    one the clock has reached since start. At the end of the "file":
    ``RECONNECTABLE`` true/``"YES"`` (default) loops, ``"KEEP_ALIVE"`` stays
    open without data, false stops (``finished`` becomes true).
    Size overrides: ``SIM_WIDTH``, ``SIM_HEIGHT``, ``SIM_FPS``,
    ``SIM_FRAME_COUNT`` at top level or in ``STREAM_CONFIG_METADATA``.
    """

    TYPES: ClassVar[tuple[str, ...]] = ("VideoFile", "VideoStream")
    DEFAULT_CAP_RESOLUTION: ClassVar[float] = 1.0

    def __init__(self, node: NodeApi, pipeline: str, config: dict[str, Any]) -> None:
        super().__init__(node, pipeline, config)
        self.video: SyntheticVideo | None = None
        self.finished = False
        self._next = 0
        self._started_at = 0.0

    def _option(self, key: str, default: Any) -> Any:
        meta = self.config.get("STREAM_CONFIG_METADATA")
        if isinstance(meta, dict) and key in meta:
            return meta[key]
        return self.config.get(key, default)

    def start(self) -> None:
        """Open the synthetic "file" named by ``URL``."""
        url = self.config.get("URL") or self.pipeline
        self.video = SyntheticVideo(
            str(url), width=self._option("SIM_WIDTH", 640), height=self._option("SIM_HEIGHT", 360),
            fps=self._option("SIM_FPS", 25.0), frame_count=self._option("SIM_FRAME_COUNT", None),
        )
        self._started_at = self.node.time()
        self._next, self.finished = 0, False

    def _index(self) -> int | None:
        assert self.video is not None
        count = self.video.frame_count
        if _truthy(self.config.get("LIVE_FEED", False)):
            index = int((self.node.time() - self._started_at) * self.video.fps)
        else:
            index = self._next
        if index < count:
            self._next = index + 1
            return index
        mode = self.config.get("RECONNECTABLE", True)
        if isinstance(mode, str) and mode.strip().upper() == "KEEP_ALIVE":
            return None
        if _truthy(mode):
            self._next = index % count + 1
            return index % count
        if not self.finished:
            logger.info("video %s of pipeline %s reached its end", self.video.url, self.pipeline)
        self.finished = True
        return None

    def poll(self) -> list[InputItem]:
        """The next frame, or nothing at the end of a non-reconnectable file."""
        if self.video is None or self.finished:
            return []
        index = self._index()
        if index is None:
            return []
        v = self.video
        metadata = {"frame_h": v.height, "frame_w": v.width, "frame_count": v.frame_count,
                    "frame_current": index, "fps": v.fps}
        return [InputItem(type="IMG", img=v.frame(index), metadata=metadata)]

    def stop(self) -> None:
        """Release the frames."""
        self.video = None
