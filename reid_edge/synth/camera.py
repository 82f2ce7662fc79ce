"""Camera and site models: colour cast, tone curve, blur, resolution, background, viewpoint.

A *domain* (site) fixes the global look: lighting tint, brightness, background family and
palette. Each camera of a site then varies around it. Cameras depend only on ``(domain, index)``
-- not on the person seed -- so crops and scene videos of the same domain share cameras, and a
different domain is a "new site" with different colours, lighting and backgrounds for the same
identity model. Domain 0 ("A") is a daylight outdoor campus, domain 1 ("B") an indoor mall with
warm light; higher domains are random sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ..errors import ConfigError

BACKGROUND_KINDS = ("campus", "mall", "station")
_LUMA = np.array([0.114, 0.587, 0.299])  # BGR luma weights


@dataclass(frozen=True)
class SiteStyle:
    """Global look of a site (domain)."""

    domain: int
    tint: tuple[float, float, float]  # BGR gains shared by all cameras
    brightness: float
    contrast: float
    saturation: float
    kinds: tuple[str, ...]  # background families used by the site
    wall_colors: tuple[tuple[int, int, int], ...]
    floor_colors: tuple[tuple[int, int, int], ...]
    noise: float


@dataclass(frozen=True)
class Camera:
    """One camera: a pointwise colour transform, then blur/resolution/noise, plus viewpoint habits."""

    index: int  # 1-based
    domain: int
    matrix: tuple[tuple[float, ...], ...]  # 3x4 BGR affine colour transform
    gamma: float
    contrast: float
    brightness: float
    blur_sigma: float
    resolution: float  # crops are rendered at this fraction of the output size, then upscaled
    noise_sigma: float
    p_front: float  # probability of seeing a person from the front
    p_mirror: float  # probability that a crop shows the person walking the "other" way
    fill: tuple[float, float]  # person height / crop height range (detector framing)
    background_kind: str
    lut: np.ndarray = field(repr=False, compare=False, hash=False, default_factory=lambda: np.arange(256))

    def apply_color(self, image: np.ndarray) -> np.ndarray:
        """Apply the camera's colour cast and tone curve to a BGR uint8 image (pointwise)."""
        mixed = cv2.transform(image, np.asarray(self.matrix, dtype=np.float32))
        return cv2.LUT(mixed, self.lut)

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "domain": self.domain,
            "matrix": [list(r) for r in self.matrix],
            "gamma": self.gamma,
            "contrast": self.contrast,
            "brightness": self.brightness,
            "blur_sigma": self.blur_sigma,
            "resolution": self.resolution,
            "noise_sigma": self.noise_sigma,
            "p_front": self.p_front,
            "background": self.background_kind,
        }


def check_positive(name: str, value: int, minimum: int = 1) -> None:
    """A generator argument must be an integer ``>= minimum``; else :class:`ConfigError` naming it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def parse_domain(value: str | int) -> int:
    """``"A"`` -> 0, ``"B"`` -> 1, ..., or a non-negative integer.

    Raises:
        ConfigError: anything else.
    """
    if isinstance(value, int):
        domain = value
    else:
        text = str(value).strip()
        if len(text) == 1 and text.isalpha():
            domain = ord(text.upper()) - ord("A")
        elif text.isdigit():
            domain = int(text)
        else:
            raise ConfigError(
                f"--domain must be a letter (A, B, ...) or a non-negative integer, got {value!r}"
            )
    if domain < 0:
        raise ConfigError(f"--domain must be >= 0, got {domain}")
    return domain


def site_style(domain: int) -> SiteStyle:
    """The global look of site ``domain``."""
    if domain == 0:  # outdoor campus in daylight: neutral-cool, bright, pavement and greenery
        return SiteStyle(
            0,
            (1.06, 1.0, 0.95),
            0.02,
            1.0,
            1.0,
            ("campus", "campus", "station"),
            ((150, 155, 160), (120, 140, 170), (170, 170, 165), (95, 110, 125)),
            ((120, 125, 130), (100, 115, 135), (140, 140, 140)),
            3.0,
        )
    if domain == 1:  # indoor mall under warm light: orange cast, darker, glossy tiles, low saturation
        return SiteStyle(
            1,
            (0.86, 0.98, 1.16),
            -0.04,
            1.08,
            0.85,
            ("mall", "mall", "station"),
            ((180, 200, 215), (90, 120, 160), (60, 70, 90), (200, 190, 180)),
            ((170, 180, 190), (110, 120, 140), (70, 80, 95)),
            5.0,
        )
    rng = np.random.default_rng([domain, 7001])
    tint = rng.uniform(0.75, 1.25, size=3)
    tint = tint / tint.mean()
    return SiteStyle(
        domain,
        (float(tint[0]), float(tint[1]), float(tint[2])),
        float(rng.uniform(-0.1, 0.08)),
        float(rng.uniform(0.85, 1.2)),
        float(rng.uniform(0.6, 1.2)),
        tuple(str(k) for k in rng.choice(BACKGROUND_KINDS, size=3)),
        tuple(_bgr(rng.integers(40, 230, size=3)) for _ in range(4)),
        tuple(_bgr(rng.integers(40, 200, size=3)) for _ in range(3)),
        float(rng.uniform(2.0, 6.0)),
    )


def _tone_lut(gamma: float, contrast: float, brightness: float) -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    out = contrast * (v**gamma - 0.5) + 0.5 + brightness
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=256)
def make_camera(index: int, domain: int = 0) -> Camera:
    """Camera ``index`` (1-based) of site ``domain``; deterministic in ``(index, domain)``."""
    style = site_style(domain)
    rng = np.random.default_rng([domain, 202, index])
    # White balance: strong per-camera gains around the site tint (a real cross-camera colour shift).
    gains = np.asarray(style.tint) * rng.uniform(0.88, 1.14, size=3)
    gains = gains / np.dot(gains, [1 / 3] * 3)
    sat = style.saturation * rng.uniform(0.75, 1.2)
    crosstalk = np.eye(3) + rng.uniform(-0.06, 0.06, size=(3, 3)) * (1 - np.eye(3))
    crosstalk = crosstalk / crosstalk.sum(axis=1, keepdims=True)
    sat_m = sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), _LUMA)
    m3 = np.diag(gains) @ sat_m @ crosstalk
    offset = rng.uniform(-5, 5, size=3)
    matrix = tuple(tuple(float(v) for v in (*m3[i], offset[i])) for i in range(3))
    gamma = float(rng.uniform(0.8, 1.25))
    contrast = float(style.contrast * rng.uniform(0.85, 1.15))
    brightness = float(style.brightness + rng.uniform(-0.07, 0.07))
    front_habit = rng.random() < 0.5
    kind = str(style.kinds[int(rng.integers(len(style.kinds)))])
    lo = float(rng.uniform(0.74, 0.86))
    return Camera(
        index=index,
        domain=domain,
        matrix=matrix,
        gamma=gamma,
        contrast=contrast,
        brightness=brightness,
        blur_sigma=float(rng.choice([0.0, 0.5, 0.8, 1.1])),
        resolution=float(rng.uniform(0.5, 1.0)),
        noise_sigma=float(style.noise * rng.uniform(0.6, 1.4)),
        p_front=0.85 if front_habit else 0.15,
        p_mirror=float(rng.uniform(0.2, 0.8)),
        fill=(lo, min(0.97, lo + 0.12)),
        background_kind=kind,
        lut=_tone_lut(gamma, contrast, brightness),
    )


def make_cameras(count: int, domain: int = 0) -> list[Camera]:
    """Cameras 1..``count`` of site ``domain``."""
    return [make_camera(i, domain) for i in range(1, count + 1)]


def _bgr(values: np.ndarray) -> tuple[int, int, int]:
    return (int(values[0]), int(values[1]), int(values[2]))


def _jitter(rng: np.random.Generator, c: tuple[int, int, int], amount: int = 18) -> tuple[int, int, int]:
    v = np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(v[0]), int(v[1]), int(v[2]))


def background(camera: Camera, height: int, width: int) -> np.ndarray:
    """The camera's static scene (raw colours, before :meth:`Camera.apply_color`), BGR uint8.

    A building/wall band above a horizon and a textured ground below, with static clutter
    (poles, bushes, bicycles, benches, shop fronts). Deterministic in the camera and the size.
    """
    rng = np.random.default_rng([camera.domain, 303, camera.index])
    style = site_style(camera.domain)
    h, w = height, width
    img = np.empty((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.3, 0.45))
    wall = _jitter(rng, style.wall_colors[int(rng.integers(len(style.wall_colors)))])
    floor = _jitter(rng, style.floor_colors[int(rng.integers(len(style.floor_colors)))])
    img[:horizon] = wall
    img[horizon:] = floor
    kind = camera.background_kind
    lw = max(1, round(h / 180))
    # Upper band: windows / shop fronts / panels.
    if kind == "campus":
        win = _jitter(rng, (90, 80, 70), 25)
        cell_w, cell_h = w / rng.integers(8, 14), horizon / rng.integers(2, 4)
        for i in range(int(w / cell_w) + 1):
            for j in range(int(horizon / cell_h)):
                x0, y0 = int(i * cell_w + cell_w * 0.2), int(j * cell_h + cell_h * 0.25)
                cv2.rectangle(img, (x0, y0), (int(x0 + cell_w * 0.6), int(y0 + cell_h * 0.5)), win, -1)
    elif kind == "mall":
        x = 0.0
        while x < w:
            sw = w * rng.uniform(0.12, 0.3)
            col = _jitter(rng, _bgr(rng.integers(40, 240, size=3)), 0)
            cv2.rectangle(img, (int(x + w * 0.01), int(horizon * 0.25)), (int(x + sw), horizon - lw), col, -1)
            cv2.rectangle(
                img,
                (int(x + w * 0.01), int(horizon * 0.1)),
                (int(x + sw), int(horizon * 0.22)),
                _jitter(rng, (230, 230, 230), 20),
                -1,
            )
            x += sw + w * 0.02
    else:  # station: columns and a long advertising band
        band = _jitter(rng, _bgr(rng.integers(40, 240, size=3)), 0)
        cv2.rectangle(img, (0, int(horizon * 0.35)), (w, int(horizon * 0.6)), band, -1)
    # Ground texture: tiles / bricks with perspective-ish spacing.
    line = tuple(int(v * 0.8) for v in floor)
    y = float(horizon)
    step = h * 0.02
    while y < h:
        cv2.line(img, (0, int(y)), (w, int(y)), line, lw)
        y += step
        step *= 1.18
    vanish_x = w * rng.uniform(0.3, 0.7)
    n_rays = int(rng.integers(8, 16))
    for i in range(n_rays + 1):
        xb = -w * 0.5 + i * (2 * w) / n_rays
        cv2.line(img, (int(vanish_x + (xb - vanish_x) * 0.05), horizon), (int(xb), h), line, lw)
    cv2.line(img, (0, horizon), (w, horizon), tuple(int(v * 0.6) for v in wall), 2 * lw)
    # Static clutter.
    for _ in range(int(rng.integers(2, 5))):
        x = int(rng.uniform(0, w))
        pole = _jitter(rng, (70, 70, 75), 20)
        cv2.rectangle(
            img,
            (x, int(horizon * rng.uniform(0.0, 0.6))),
            (x + max(2, w // 120), int(horizon + h * 0.15)),
            pole,
            -1,
        )
    if kind == "campus":
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = int(rng.uniform(0, w)), int(horizon + rng.uniform(-0.02, 0.05) * h)
            cv2.ellipse(
                img,
                (cx, cy),
                (int(w * rng.uniform(0.04, 0.09)), int(h * rng.uniform(0.04, 0.08))),
                0,
                0,
                360,
                _jitter(rng, (50, 110, 60), 20),
                -1,
            )
        for _ in range(int(rng.integers(1, 4))):  # parked bicycles
            bx, by = int(rng.uniform(0, w)), int(horizon + h * rng.uniform(0.03, 0.08))
            r = int(h * 0.035)
            col = _jitter(rng, (40, 40, 45), 10)
            for dx in (0, int(2.6 * r)):
                cv2.circle(img, (bx + dx, by), r, col, max(1, lw))
            cv2.line(img, (bx, by), (bx + int(2.6 * r), by - r), col, max(1, lw))
    else:
        for _ in range(int(rng.integers(1, 3))):  # benches / planters
            bx, by = int(rng.uniform(0, w)), int(horizon + h * rng.uniform(0.0, 0.04))
            col = _jitter(rng, (60, 90, 120), 30)
            cv2.rectangle(img, (bx, by - int(h * 0.05)), (bx + int(w * 0.1), by), col, -1)
    # Colourful static objects: parked cars, posters, signs, planters, litter bins.
    for _ in range(int(rng.integers(5, 10))):
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x, y = int(rng.uniform(-0.05, 1.0) * w), int(rng.uniform(0.05, 0.95) * h)
        ow, oh = int(rng.uniform(0.02, 0.12) * w) + 1, int(rng.uniform(0.02, 0.12) * h) + 1
        if rng.random() < 0.6:
            cv2.rectangle(img, (x, y), (x + ow, y + oh), color, -1)
        else:
            cv2.ellipse(img, (x, y), (ow // 2 + 1, oh // 2 + 1), 0, 0, 360, color, -1)
    # Fine static texture so the background is not flat.
    grain = cv2.GaussianBlur(rng.normal(0.0, 6.0, size=(h, w)).astype(np.float32), (0, 0), 1.2)[..., None]
    img = np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 0.6)
