"""Harvest an unlabeled re-identification dataset from a site's own cameras.

Detection and per-camera tracking (the pipeline's own code, no re-identification) turn raw
footage into quality-filtered person crops. The output folder is what
``reid-edge train --format unlabeled`` reads: ``<out>/<camera>/<camera>_t<track>_f<frame>.jpg``
plus ``<out>/manifest.csv`` (``path,camera,tracklet,frame``), so the tracklet ids, free
label-free information, can be used as extra positives (``--tracklet-positives``).

Filtering, per confirmed track and frame:
- rejected: boxes shorter than ``min_height`` px, boxes cut by the frame border, boxes more than
  ``max_overlap`` covered by another box, boxes whose aspect (h/w) is outside ``aspect_range``;
- sampled: at most one crop every ``every`` frames and ``max_per_track`` per track, the later ones
  only when they differ from the track's last saved crop (a near-duplicate frame adds nothing).

Every crop is written atomically and its manifest row flushed at once, so a crash keeps all
crops harvested so far.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, PipelineError
from ..io import atomic_write_bytes, atomic_write_json
from .detectors import DEFAULT_DETECTOR, make_detector
from .sources import open_sources
from .tracker import ByteTracker, TrackerConfig


@dataclass(frozen=True)
class HarvestConfig:
    """What counts as a crop worth keeping."""

    every: int = 5
    max_per_track: int = 20
    min_height: int = 48
    max_overlap: float = 0.3
    aspect_range: tuple[float, float] = (1.2, 4.5)
    border_margin: int = 2
    min_change: float = 6.0  # mean absolute grey-level difference (0-255) that makes a crop new
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_per_track < 1:
            raise ConfigError("harvest: --every and --max-per-track must be >= 1")
        if self.min_height < 8:
            raise ConfigError("harvest: min_height must be >= 8 pixels")
        if not 0.0 <= self.max_overlap <= 1.0:
            raise ConfigError("harvest: max_overlap must be in [0, 1]")


def reject_reason(box: np.ndarray, others: np.ndarray, frame_w: int, frame_h: int, cfg: HarvestConfig) -> str | None:
    """Why a box ``x, y, w, h`` is not worth a crop (``None``: keep it).

    Args:
        others: the other boxes of the same frame ``[M, 4]`` (occluders).
    """
    x, y, w, h = (float(v) for v in box[:4])
    if h < cfg.min_height:
        return "small"
    m = cfg.border_margin
    if x <= m or y <= m or x + w >= frame_w - m or y + h >= frame_h - m:
        return "cut"
    aspect = h / max(w, 1e-6)
    if not cfg.aspect_range[0] <= aspect <= cfg.aspect_range[1]:
        return "aspect"
    if len(others):
        o = np.asarray(others, dtype=np.float64).reshape(-1, 4)
        iw = np.clip(np.minimum(x + w, o[:, 0] + o[:, 2]) - np.maximum(x, o[:, 0]), 0, None)
        ih = np.clip(np.minimum(y + h, o[:, 1] + o[:, 3]) - np.maximum(y, o[:, 1]), 0, None)
        if float((iw * ih).max()) / (w * h) > cfg.max_overlap:
            return "overlap"
    return None


def crop_signature(crop: np.ndarray) -> np.ndarray:
    """A small grey thumbnail used to skip near-duplicate crops of one track."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (16, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_near_duplicate(sig: np.ndarray, last: np.ndarray | None, min_change: float) -> bool:
    return last is not None and float(np.abs(sig - last).mean()) < min_change


@dataclass
class _TrackLog:
    saved: int = 0
    last_frame: int = -(10**9)
    last_sig: np.ndarray | None = None


@dataclass
class HarvestSummary:
    crops: dict[str, int] = field(default_factory=dict)
    tracklets: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"crops": self.crops, "tracklets": self.tracklets, "frames": self.frames, "rejected": self.rejected,
                "total_crops": sum(self.crops.values()), "total_tracklets": sum(self.tracklets.values())}


def harvest(
    cameras: list[str],
    out_dir: str | Path,
    detector: str = DEFAULT_DETECTOR,
    detections_dir: str | Path | None = None,
    camera_names: list[str] | None = None,
    config: HarvestConfig | None = None,
    tracker_config: TrackerConfig | None = None,
    max_frames: int | None = None,
    skip_bad_cameras: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
    device: str = "auto",
) -> HarvestSummary:
    """Detect, track and save quality-filtered crops of every camera into ``out_dir``.

    Args:
        cameras: video files, URLs, webcam indices or image folders.
        detector: a ``--detector`` spelling (``yolox``, ``yolox:PATH``, ``yolo:PATH``, ``motion``, ``hog``, ...).
        detections_dir: precomputed MOT detections per camera (overrides ``detector``).
        progress: called as ``progress(camera, frames_done, frames_total)``.
    Returns:
        crops and tracklets per camera, frames read, rejection counts by reason.
    Raises:
        PipelineError: a camera cannot be opened (unless ``skip_bad_cameras``).
    """
    cfg = config or HarvestConfig()
    out = Path(out_dir)
    sources = open_sources(cameras, camera_names, skip_bad=skip_bad_cameras)
    summary = HarvestSummary()
    manifest_path = out / "manifest.csv"
    with open(manifest_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "camera", "tracklet", "frame"])
        handle.flush()
        for src in sources:
            det = make_detector(detector, src.name, detections_dir, device=device)
            tracker = ByteTracker(tracker_config)
            cam_dir = out / src.name
            cam_dir.mkdir(parents=True, exist_ok=True)
            logs: dict[int, _TrackLog] = {}
            rejected: Counter[str] = Counter()
            frames = 0
            try:
                while max_frames is None or frames < max_frames:
                    frame = src.read()
                    if frame is None:
                        break
                    frames += 1
                    active, _ = tracker.update(det.detect(frame.image, frame.index), frame=frame.index)
                    boxes = np.array([t.det_box for t in active]).reshape(-1, 4)
                    fh, fw = frame.image.shape[:2]
                    for i, track in enumerate(active):
                        log = logs.setdefault(track.track_id, _TrackLog())
                        if log.saved >= cfg.max_per_track or frame.index - log.last_frame < cfg.every:
                            continue
                        reason = reject_reason(boxes[i], np.delete(boxes, i, axis=0), fw, fh, cfg)
                        if reason is not None:
                            rejected[reason] += 1
                            continue
                        x, y, w, h = (int(round(v)) for v in boxes[i])
                        crop = frame.image[max(y, 0):y + h, max(x, 0):x + w]
                        if crop.size == 0:
                            rejected["empty"] += 1
                            continue
                        sig = crop_signature(crop)
                        if is_near_duplicate(sig, log.last_sig, cfg.min_change):
                            rejected["duplicate"] += 1
                            continue
                        name = f"{src.name}_t{track.track_id:05d}_f{frame.index:06d}.jpg"
                        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
                        if not ok:
                            raise PipelineError(f"cannot encode a crop of camera {src.name}")
                        atomic_write_bytes(cam_dir / name, buf.tobytes())
                        writer.writerow([f"{src.name}/{name}", src.name, track.track_id, frame.index])
                        handle.flush()
                        log.saved += 1
                        log.last_frame = frame.index
                        log.last_sig = sig
                    if progress is not None:
                        progress(src.name, frames, src.frame_count)
            finally:
                src.close()
            summary.crops[src.name] = sum(log.saved for log in logs.values())
            summary.tracklets[src.name] = sum(1 for log in logs.values() if log.saved > 0)
            summary.frames[src.name] = frames
            summary.rejected[src.name] = dict(rejected)
    atomic_write_json(out / "harvest_summary.json", summary.to_dict())
    return summary
