"""Synthetic multi-camera footage with MOTChallenge ground truth and noisy detections.

People walk across one camera's view, leave, and after a travel gap walk across another
camera's view, drawn with the same identity model and camera transforms as ``synth crops``
(so a model trained on crops transfers). Per camera the output folder holds ``camN.mp4``,
``camN.gt.txt`` (``frame,id,x,y,w,h,1,-1,-1,-1``; the same id for a person in every camera) and
``camN.det.txt`` (``frame,-1,x,y,w,h,conf,-1,-1,-1``: jittered boxes, ~5% misses, a few
low-confidence false positives); ``scene.json`` describes cameras, people and their visits.
Frames are 1-based; boxes are in pixels with a 0-based origin and lie inside the frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_json, atomic_write_text, prepare_out_dir
from .camera import Camera, check_positive, make_cameras
from .people import Identity, View, figure_width, identity_for
from .render import camera_background, render_sprite

MIN_FRAMES = 10
MISS_RATE = 0.05
FALSE_POSITIVES_PER_FRAME = 0.04


@dataclass(frozen=True)
class Visit:
    """One walk of a person across one camera's view (frames 1-based, inclusive)."""

    camera: int
    first_frame: int
    last_frame: int
    direction: str  # "left-to-right" or "right-to-left"


@dataclass(frozen=True)
class SceneInfo:
    """What :func:`generate_scene` wrote."""

    out: str
    cameras: int
    people: int
    fps: int
    width: int
    height: int
    frames: int
    seed: int
    domain: int
    visits: dict[int, list[Visit]] = field(default_factory=dict)
    gt_boxes: int = 0
    det_boxes: int = 0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["visits"] = {str(k): [asdict(v) for v in vs] for k, vs in self.visits.items()}
        return d


@dataclass(frozen=True)
class _Walk:
    pid: int
    camera: int  # 1-based
    t0: float  # seconds, entering the view
    t1: float  # seconds, fully left the view
    direction: int  # +1 left-to-right
    speed: float  # px / s
    foot_y0: float
    foot_dy: float  # px / s
    front: bool
    phase0: float


def parse_size(text: str) -> tuple[int, int]:
    """``"640x360"`` -> ``(640, 360)``.

    Raises:
        ConfigError: not ``WIDTHxHEIGHT`` with WIDTH >= 160 and HEIGHT >= 120.
    """
    parts = str(text).lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--size must look like 640x360 (WIDTHxHEIGHT), got {text!r}")
    w, h = int(parts[0]), int(parts[1])
    if w < 160 or h < 120:
        raise ConfigError(f"--size must be at least 160x120, got {w}x{h}")
    return w, h


def _person_height(foot_y: float, height: int) -> float:
    """Perspective: pedestrians are 60 px tall near the horizon and 160 px at the bottom (at 360 rows)."""
    far, near = 0.5 * height, 0.98 * height
    k = min(1.0, max(0.0, (foot_y - far) / (near - far)))
    return height * (60 + 100 * k) / 360.0


def plan_walks(cameras: int, people: int, seconds: float, seed: int, width: int, height: int) -> list[_Walk]:
    """Each person walks across 2 (sometimes 3) cameras in turn, with a travel gap in between."""
    walks: list[_Walk] = []
    for pid in range(1, people + 1):
        rng = np.random.default_rng([seed, 21, pid])
        n_visits = 3 if cameras >= 3 and rng.random() < 0.3 else 2
        cam = int(rng.integers(cameras))
        route = [cam]
        for _ in range(n_visits - 1):
            step = 1 if cameras == 2 else int(rng.choice([-1, 1]))
            cam = (cam + step) % cameras
            route.append(cam)
        legs = []
        for c in route:
            foot_y0 = float(rng.uniform(0.55, 0.97) * height)
            hp = _person_height(foot_y0, height)
            speed = hp * float(rng.uniform(0.55, 0.9))  # ~1-1.6 m/s for a 1.7 m person
            legs.append([c, foot_y0, hp, speed, float(rng.uniform(1.0, 4.0))])
        ident = identity_for(seed, pid)
        durations = [(width + 1.2 * figure_width(ident, leg[2])) / leg[3] for leg in legs]
        total = sum(durations) + sum(leg[4] for leg in legs[:-1])
        squeeze = max(1.0, total / (0.95 * seconds))  # short clips: people hurry
        total /= squeeze
        t = float(rng.uniform(0.0, max(0.0, seconds - total)))
        for i, (cam_i, foot_y0, _hp, speed, gap) in enumerate(legs):
            duration = durations[i] / squeeze
            direction = int(rng.choice([-1, 1]))
            drift = float(rng.uniform(-0.02, 0.02) * height) if duration > 0 else 0.0
            foot_dy = float(
                np.clip(drift, (0.52 * height - foot_y0) / duration, (0.99 * height - foot_y0) / duration)
            )
            walks.append(
                _Walk(
                    pid,
                    int(cam_i) + 1,
                    t,
                    t + duration,
                    direction,
                    speed * squeeze,
                    foot_y0,
                    foot_dy,
                    bool(rng.random() < 0.5),
                    float(rng.uniform(0, 2 * math.pi)),
                )
            )
            t += duration + gap / squeeze
    return walks


def _noise_bank(rng: np.random.Generator, sigma: float, height: int, width: int, n: int = 4) -> list[tuple]:
    bank = []
    for _ in range(n):
        noise = rng.normal(0.0, sigma, size=(height, width, 3)).astype(np.float32)
        bank.append((np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)))
    return bank


def _draw_frame(frame: np.ndarray, placed: list[tuple[np.ndarray, np.ndarray, int, int]]) -> None:
    h, w = frame.shape[:2]
    for pre, alpha, x0, y0 in placed:
        sh, sw = alpha.shape[:2]
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + sw), min(h, y0 + sh)
        if fx1 <= fx0 or fy1 <= fy0:
            continue
        roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        p = pre[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        frame[fy0:fy1, fx0:fx1] = np.clip(roi * (1.0 - a) + p + 0.5, 0, 255).astype(np.uint8)


def _detections(
    rng: np.random.Generator, boxes: list[list[float]], width: int, height: int
) -> list[tuple[float, float, float, float, float]]:
    """Noisy detector output for one frame: jitter, misses (more when occluded), false positives."""
    dets = []
    for _pid, x, y, w, h, occl in boxes:
        if rng.random() < MISS_RATE + 0.5 * max(0.0, occl - 0.3):
            continue
        cx = x + w / 2 + rng.normal(0, 0.04 * w)
        cy = y + h / 2 + rng.normal(0, 0.03 * h)
        dw, dh = w * math.exp(rng.normal(0, 0.06)), h * math.exp(rng.normal(0, 0.04))
        x0, y0 = max(0.0, cx - dw / 2), max(0.0, cy - dh / 2)
        x1, y1 = min(float(width), cx + dw / 2), min(float(height), cy + dh / 2)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        conf = float(np.clip(rng.normal(0.86, 0.08) - 0.4 * occl, 0.3, 1.0))
        dets.append((x0, y0, x1 - x0, y1 - y0, conf))
    for _ in range(int(rng.poisson(FALSE_POSITIVES_PER_FRAME))):
        hp = _person_height(float(rng.uniform(0.55, 0.97) * height), height) * rng.uniform(0.4, 1.0)
        fp_w = hp * rng.uniform(0.3, 0.6)
        x0, y0 = rng.uniform(0, width - fp_w), rng.uniform(0.2 * height, height - hp)
        dets.append(
            (
                float(x0),
                float(max(0.0, y0)),
                float(fp_w),
                float(min(hp, height - max(0.0, y0))),
                float(rng.uniform(0.05, 0.45)),
            )
        )
    return dets


def _render_camera(
    cam: Camera,
    walks: list[_Walk],
    identities: dict[int, Identity],
    frames: int,
    fps: int,
    width: int,
    height: int,
    seed: int,
    video_path: Path,
) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng([seed, 31, cam.index])
    det_rng = np.random.default_rng([seed, 32, cam.index])
    bg = cam.apply_color(np.ascontiguousarray(camera_background(cam.index, cam.domain, height, width)))
    if cam.blur_sigma > 0:
        bg = cv2.GaussianBlur(bg, (0, 0), cam.blur_sigma)
    bank = _noise_bank(rng, max(1.0, 0.6 * cam.noise_sigma), height, width)
    tmp = video_path.with_name(f".{video_path.stem}.partial{video_path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise DataError(
            f"OpenCV cannot write {video_path} with the mp4v codec (is OpenCV built with FFmpeg?)"
        )
    gt_lines: list[str] = []
    det_lines: list[str] = []
    try:
        for f in range(frames):
            t = f / fps
            active = [wk for wk in walks if wk.t0 <= t <= wk.t1]
            people = []
            for wk in active:
                ident = identities[wk.pid]
                dt = t - wk.t0
                foot_y = wk.foot_y0 + wk.foot_dy * dt
                hp = _person_height(foot_y, height)
                fw = figure_width(ident, hp)
                start = -0.6 * fw if wk.direction > 0 else width + 0.6 * fw
                cx = start + wk.direction * wk.speed * dt
                phase = wk.phase0 + 2 * math.pi * wk.speed * dt / (0.9 * hp)
                view = View(front=wk.front, mirror=wk.direction < 0, phase=phase, arm_swing=0.7)
                people.append((foot_y, wk.pid, ident, view, cx, hp))
            people.sort(key=lambda p: (p[0], p[1]))  # far (small foot y) first: depth order
            placed = []
            boxes: list[list[float]] = []
            for foot_y, pid, ident, view, cx, hp in people:
                pre, alpha, scx, stop = render_sprite(ident, cam, view, hp)
                x0 = int(round(cx - scx))
                y0 = int(round(foot_y - hp - stop))
                placed.append((pre, alpha, x0, y0))
                bx, by, bw, bh = cv2.boundingRect((alpha[..., 0] > 0.25).astype(np.uint8))
                gx0, gy0 = x0 + bx, y0 + by
                cx0, cy0 = max(0, gx0), max(0, gy0)
                cx1, cy1 = min(width, gx0 + bw), min(height, gy0 + bh)
                if bw > 0 and (cx1 - cx0) >= 0.3 * bw and (cy1 - cy0) >= 0.5 * bh:
                    boxes.append([pid, cx0, cy0, cx1 - cx0, cy1 - cy0, 0.0])
            # Occlusion by people drawn later (nearer): fraction of the box they cover (upper bound).
            for i, bi in enumerate(boxes):
                area = bi[3] * bi[4]
                cover = 0.0
                for bj in boxes[i + 1 :]:
                    ix = max(0, min(bi[1] + bi[3], bj[1] + bj[3]) - max(bi[1], bj[1]))
                    iy = max(0, min(bi[2] + bi[4], bj[2] + bj[4]) - max(bi[2], bj[2]))
                    cover = max(cover, ix * iy / area)
                bi[5] = cover
            frame = bg.copy()
            _draw_frame(frame, placed)
            pos, neg = bank[int(rng.integers(len(bank)))]
            cv2.add(frame, pos, dst=frame)
            cv2.subtract(frame, neg, dst=frame)
            writer.write(frame)
            for b in sorted(boxes, key=lambda b: b[0]):
                gt_lines.append(
                    f"{f + 1},{int(b[0])},{int(b[1])},{int(b[2])},{int(b[3])},{int(b[4])},1,-1,-1,-1"
                )
            for dx, dy, dw, dh, conf in _detections(det_rng, boxes, width, height):
                det_lines.append(f"{f + 1},-1,{dx:.1f},{dy:.1f},{dw:.1f},{dh:.1f},{conf:.3f},-1,-1,-1")
        writer.release()
        os.replace(tmp, video_path)
    finally:
        writer.release()
        if tmp.exists():
            tmp.unlink()
    return gt_lines, det_lines


def generate_scene(
    out: str | os.PathLike[str],
    cameras: int,
    people: int,
    seconds: float,
    seed: int = 0,
    *,
    fps: int = 10,
    size: tuple[int, int] = (640, 360),
    domain: int = 0,
    overwrite: bool = False,
) -> SceneInfo:
    """Render synthetic multi-camera footage of ``people`` walking between ``cameras``.

    Args:
        out: output folder (created; must be empty unless ``overwrite``).
        cameras: number of cameras (>= 2, so that every person appears in two of them).
        people: number of people; each walks through 2 or 3 cameras.
        seconds: clip length; every camera's video has ``round(seconds * fps)`` frames.
        seed: population and motion randomness (same seed -> identical files).
        fps: frames per second.
        size: ``(width, height)`` of every video.
        domain: site style (0 = "A", 1 = "B", ...): camera colours, lighting, backgrounds.
        overwrite: write into a non-empty ``out``.

    Raises:
        ConfigError: invalid counts, sizes or too few frames.
        ReidEdgeError: ``out`` is not empty (without ``overwrite``) or not writable.
        DataError: OpenCV cannot write mp4v video.
    """
    for name, value, minimum in (("--cameras", cameras, 2), ("--people", people, 1), ("--fps", fps, 1)):
        check_positive(name, value, minimum)
    if not isinstance(seconds, (int, float)) or not seconds > 0 or not math.isfinite(seconds):
        raise ConfigError(f"--seconds must be a positive number, got {seconds!r}")
    width, height = size
    if width < 160 or height < 120:
        raise ConfigError(f"--size must be at least 160x120, got {width}x{height}")
    frames = int(round(seconds * fps))
    if frames < MIN_FRAMES:
        raise ConfigError(f"--seconds x --fps gives {frames} frames; need at least {MIN_FRAMES}")
    if people > 9999:
        raise ConfigError(f"--people must be <= 9999, got {people}")
    root = prepare_out_dir(out, overwrite)
    cams = make_cameras(cameras, domain)
    identities = {pid: identity_for(seed, pid) for pid in range(1, people + 1)}
    walks = plan_walks(cameras, people, frames / fps, seed, width, height)
    visits: dict[int, list[Visit]] = {pid: [] for pid in identities}
    n_gt = n_det = 0
    for cam in cams:
        cam_walks = [w for w in walks if w.camera == cam.index]
        gt, det = _render_camera(
            cam, cam_walks, identities, frames, fps, width, height, seed, root / f"cam{cam.index}.mp4"
        )
        atomic_write_text(root / f"cam{cam.index}.gt.txt", "".join(line + "\n" for line in gt))
        atomic_write_text(root / f"cam{cam.index}.det.txt", "".join(line + "\n" for line in det))
        n_gt += len(gt)
        n_det += len(det)
        seen: dict[int, list[int]] = {}
        for line in gt:
            f, pid = (int(v) for v in line.split(",")[:2])
            seen.setdefault(pid, []).append(f)
        for wk in cam_walks:  # a walk's frames are those of its person inside its time span
            fs = [f for f in seen.get(wk.pid, []) if wk.t0 - 1e-9 <= (f - 1) / fps <= wk.t1 + 1e-9]
            if fs:
                direction = "left-to-right" if wk.direction > 0 else "right-to-left"
                visits[wk.pid].append(Visit(cam.index, min(fs), max(fs), direction))
    for pid in visits:
        visits[pid].sort(key=lambda v: v.first_frame)
    info = SceneInfo(
        out=str(root),
        cameras=cameras,
        people=people,
        fps=fps,
        width=width,
        height=height,
        frames=frames,
        seed=seed,
        domain=domain,
        visits=visits,
        gt_boxes=n_gt,
        det_boxes=n_det,
    )
    meta = {k: v for k, v in info.to_dict().items() if k not in ("out", "visits")}
    meta.update(
        {
            "kind": "scene",
            "size": [width, height],
            "seconds": frames / fps,
            "box_format": "frame,id,x,y,w,h,1,-1,-1,-1 (gt); frame,-1,x,y,w,h,conf,-1,-1,-1 (det); "
            "frames 1-based, pixel boxes with 0-based origin",
            "camera_files": [
                {
                    "camera": c.index,
                    "video": f"cam{c.index}.mp4",
                    "gt": f"cam{c.index}.gt.txt",
                    "det": f"cam{c.index}.det.txt",
                    "model": c.to_dict(),
                }
                for c in cams
            ],
            "people_visits": [{"id": pid, "visits": [asdict(v) for v in vs]} for pid, vs in visits.items()],
        }
    )
    atomic_write_json(root / "scene.json", meta)
    return info
