"""Render one pedestrian crop as a given camera sees it (the renderer shared by crops and scenes)."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from .camera import Camera, background, make_camera
from .people import Identity, View, draw_figure, figure_width, sample_identity

# Camera backgrounds are drawn at this size; crops take patches of it.
BACKGROUND_SIZE = (360, 640)


@lru_cache(maxsize=64)
def camera_background(index: int, domain: int, height: int, width: int) -> np.ndarray:
    """The static background of camera ``index`` of site ``domain`` (raw colours), cached read-only."""
    img = background(make_camera(index, domain), height, width)
    img.setflags(write=False)
    return img


def sample_view(camera: Camera, rng: np.random.Generator) -> View:
    """A random per-image view following the camera's habits (mostly front or mostly back)."""
    return View(
        front=bool(rng.random() < camera.p_front),
        mirror=bool(rng.random() < camera.p_mirror),
        phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        arm_swing=float(rng.uniform(0.3, 1.0)),
    )


def _background_patch(camera: Camera, rng: np.random.Generator, rh: int, rw: int) -> np.ndarray:
    bg = camera_background(camera.index, camera.domain, *BACKGROUND_SIZE)
    big_h, big_w = bg.shape[:2]
    ph = int(big_h * rng.uniform(0.25, 0.5))
    pw = max(4, int(ph * rw / rh))
    y0 = int(rng.uniform(0.15 * big_h, big_h - ph))
    x0 = int(rng.uniform(0, big_w - pw))
    patch = bg[y0 : y0 + ph, x0 : x0 + pw]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(patch), (rw, rh), interpolation=cv2.INTER_AREA)
    _clutter(out, rng)
    return out


def _clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Transient background objects (cars, signs, bicycles, bushes) so crops of one camera vary."""
    rh, rw = canvas.shape[:2]
    for _ in range(int(rng.integers(0, 3))):
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        kind = rng.integers(4)
        x, y = int(rng.uniform(-0.2, 1.0) * rw), int(rng.uniform(0.0, 0.9) * rh)
        if kind == 0:  # car body / sign panel
            cv2.rectangle(
                canvas,
                (x, y),
                (x + int(rng.uniform(0.3, 1.0) * rw), y + int(rng.uniform(0.1, 0.4) * rh)),
                color,
                -1,
            )
        elif kind == 1:  # bicycle wheels
            r = int(rng.uniform(0.1, 0.2) * rw) + 1
            for dx in (0, int(2.4 * r)):
                cv2.circle(canvas, (x + dx, y), r, color, max(1, rw // 32))
        elif kind == 2:  # bush / blob
            cv2.ellipse(
                canvas,
                (x, y),
                (int(rng.uniform(0.15, 0.5) * rw) + 1, int(rng.uniform(0.05, 0.2) * rh) + 1),
                0,
                0,
                360,
                color,
                -1,
            )
        else:  # pole / door frame
            w = max(1, int(rng.uniform(0.04, 0.12) * rw))
            cv2.rectangle(canvas, (x, 0), (x + w, rh), color, -1)


def _occlude(
    canvas: np.ndarray, rng: np.random.Generator, cx: float, top: float, hp: float, front_pass: bool
) -> None:
    rh, rw = canvas.shape[:2]
    kind = rng.choice(["person", "pole", "low"], p=[0.5, 0.25, 0.25]) if front_pass else "person"
    if kind == "person":
        other = sample_identity(rng, 0)
        dx = rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 0.75) * rw
        scale = rng.uniform(0.9, 1.15)
        draw_figure(
            canvas,
            other,
            View(front=bool(rng.random() < 0.5), phase=float(rng.uniform(0, 6.28))),
            cx + dx,
            top + hp * (1 - scale) + rng.normal(0, 0.02 * hp),
            hp * scale,
        )
    elif kind == "pole":
        w = int(rng.uniform(0.1, 0.22) * rw)
        x0 = 0 if rng.random() < 0.5 else rw - w
        color = tuple(int(v) for v in rng.integers(30, 200, size=3))
        cv2.rectangle(canvas, (x0, 0), (x0 + w, rh), color, -1)
    else:
        h = int(rng.uniform(0.12, 0.3) * rh)
        color = tuple(int(v) for v in rng.integers(20, 120, size=3))
        cv2.rectangle(canvas, (0, rh - h), (rw, rh), color, -1)
        for i in range(3):  # a railing / bicycle-ish structure
            cv2.line(canvas, (int(i * rw / 3), rh - h), (int(i * rw / 3 + rw / 4), rh), (20, 20, 20), 1)


def finish_camera(
    canvas: np.ndarray,
    camera: Camera,
    rng: np.random.Generator,
    height: int,
    width: int,
    gain_jitter: float = 0.03,
) -> np.ndarray:
    """Camera transform of a raw render: colour cast, tone curve, resolution, blur, sensor noise."""
    img = camera.apply_color(canvas)
    if gain_jitter > 0:  # auto-exposure and auto-white-balance drift between frames
        gains = rng.uniform(1 - gain_jitter, 1 + gain_jitter) * rng.uniform(0.98, 1.02, size=3)
        img = cv2.multiply(img, np.asarray([*gains, 0.0]), dtype=cv2.CV_8U)
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    if camera.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), camera.blur_sigma)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(camera.noise_sigma)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def render_person(
    identity: Identity,
    camera: Camera,
    view: View,
    rng: np.random.Generator,
    height: int = 128,
    width: int = 64,
    occlusion: float = 0.12,
) -> np.ndarray:
    """One detector-style crop of ``identity`` seen by ``camera``; BGR uint8 ``(height, width, 3)``.

    Args:
        identity: the person (:func:`reid_edge.synth.people.identity_for`).
        camera: the camera (:func:`reid_edge.synth.camera.make_camera`).
        view: front/back, mirror, walking phase (:func:`sample_view`).
        rng: per-image randomness: framing, background patch, occlusion, noise.
        height, width: output size.
        occlusion: probability of an occluder (another person, a pole, a low obstacle).
    """
    rh = max(32, round(height * camera.resolution))
    rw = max(16, round(width * camera.resolution))
    canvas = _background_patch(camera, rng, rh, rw)
    fill = rng.uniform(*camera.fill)
    hp = fill * rh
    # Keep the figure horizontally inside the crop, as a detector box would.
    fw = min(figure_width(identity, hp), rw)
    cx = rw / 2 + rng.normal(0.0, 0.04 * rw)
    cx = float(np.clip(cx, fw / 2 - 0.08 * rw, rw - fw / 2 + 0.08 * rw))
    top = (rh - hp) * rng.uniform(0.25, 0.75)
    occluded = rng.random() < occlusion
    behind = occluded and rng.random() < 0.35
    if behind:
        _occlude(canvas, rng, cx, top, hp, front_pass=False)
    draw_figure(canvas, identity, view, cx, top, hp)
    if occluded and not behind:
        _occlude(canvas, rng, cx, top, hp, front_pass=True)
    return finish_camera(canvas, camera, rng, height, width)


def render_distractor(
    camera: Camera, rng: np.random.Generator, height: int = 128, width: int = 64
) -> np.ndarray:
    """A junk detection (pid 0000 in Market): background only, or a badly framed unknown person."""
    rh = max(32, round(height * camera.resolution))
    rw = max(16, round(width * camera.resolution))
    canvas = _background_patch(camera, rng, rh, rw)
    kind = rng.integers(3)
    if kind > 0:
        other = sample_identity(rng, 0)
        hp = rh * (rng.uniform(1.4, 2.2) if kind == 1 else rng.uniform(0.3, 0.5))
        top = -hp * rng.uniform(0.0, 0.5) if kind == 1 else rng.uniform(0, rh - hp)
        draw_figure(
            canvas,
            other,
            View(front=bool(rng.random() < 0.5), phase=float(rng.uniform(0, 6.28))),
            rw * rng.uniform(0.2, 0.8),
            top,
            hp,
        )
    return finish_camera(canvas, camera, rng, height, width)


def render_sprite(
    identity: Identity, camera: Camera, view: View, hp: float
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A person ``hp`` px tall on a transparent layer, with the camera's colour transform and blur.

    Returns:
        ``(premultiplied, alpha, cx, top)``: float32 ``(h, w, 3)`` colour already multiplied by
        alpha, float32 ``(h, w, 1)`` alpha in [0, 1] (composite as ``dst * (1 - alpha) + premultiplied``),
        and where the body's horizontal centre and the top of the head lie in the layer.
    """
    fw = figure_width(identity, hp)
    pad = 2 + int(math.ceil(2.5 * camera.blur_sigma))
    sh = int(math.ceil(hp * 1.04)) + 2 * pad
    sw = int(math.ceil(fw * 1.15)) + 2 * pad
    canvas = np.zeros((sh, sw, 3), np.uint8)
    mask = np.zeros((sh, sw), np.uint8)
    cx, top = sw // 2, pad
    draw_figure(canvas, identity, view, float(cx), float(top), hp, mask)
    alpha: np.ndarray = mask.astype(np.float32) * np.float32(1 / 255)
    pre: np.ndarray = camera.apply_color(canvas).astype(np.float32) * alpha[..., None]
    if camera.blur_sigma > 0:
        pre = cv2.GaussianBlur(pre, (0, 0), camera.blur_sigma)
        alpha = cv2.GaussianBlur(alpha, (0, 0), camera.blur_sigma)
    return pre, alpha[..., None], cx, top
