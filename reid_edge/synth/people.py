"""The identity model: what a synthetic person looks like, and how to draw one.

An :class:`Identity` fixes everything that stays the same for a person across cameras: body
proportions, skin, hair, hat, garments (colours *and* patterns), trousers/shorts/skirt and
bags. A :class:`View` holds what changes per image: front or back view, mirror, walking phase,
framing. :func:`draw_figure` paints an identity into a BGR canvas (and an alpha mask) with
OpenCV primitives; it is shared by the crop generator and the scene renderer, so a model trained
on ``synth crops`` sees the same people in ``synth scene`` videos.

Everything is deterministic given a ``numpy.random.Generator``; no global RNG is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

Color = tuple[int, int, int]  # BGR

# (BGR, weight): clothing is mostly dark/neutral, as in real footage, so colour alone is a weak cue.
_TOP_PALETTE: tuple[tuple[Color, float], ...] = (
    ((28, 26, 26), 3.0),  # black
    ((62, 60, 60), 2.0),  # dark grey
    ((130, 128, 126), 1.5),  # grey
    ((232, 234, 236), 2.5),  # white
    ((92, 42, 22), 2.0),  # navy
    ((150, 100, 58), 1.2),  # denim blue
    ((150, 188, 210), 1.0),  # beige
    ((42, 70, 112), 0.8),  # brown
    ((40, 40, 200), 1.0),  # red
    ((45, 30, 120), 0.6),  # maroon
    ((60, 140, 55), 0.8),  # green
    ((50, 105, 105), 0.5),  # olive
    ((50, 200, 230), 0.6),  # yellow
    ((30, 120, 240), 0.5),  # orange
    ((180, 140, 240), 0.6),  # pink
    ((130, 50, 110), 0.5),  # purple
    ((230, 180, 120), 0.6),  # sky blue
    ((130, 130, 30), 0.4),  # teal
)
_BOTTOM_PALETTE: tuple[tuple[Color, float], ...] = (
    ((28, 26, 26), 3.0),  # black
    ((62, 60, 60), 1.5),  # dark grey
    ((130, 128, 126), 1.0),  # grey
    ((120, 78, 40), 2.5),  # jeans
    ((160, 120, 80), 1.0),  # light jeans
    ((92, 42, 22), 1.2),  # navy
    ((120, 160, 185), 1.2),  # khaki
    ((42, 70, 112), 0.6),  # brown
    ((225, 228, 230), 0.5),  # white
    ((45, 30, 120), 0.3),  # maroon
    ((60, 110, 60), 0.3),  # dark green
)
_SKIN: tuple[Color, ...] = ((170, 200, 238), (140, 175, 225), (95, 140, 200), (60, 100, 160), (40, 62, 100))
_HAIR: tuple[tuple[Color, float], ...] = (
    ((20, 20, 24), 4.0),  # black
    ((25, 40, 62), 2.5),  # dark brown
    ((40, 72, 115), 1.2),  # brown
    ((100, 170, 212), 0.8),  # blond
    ((155, 155, 158), 0.5),  # grey
    ((30, 60, 150), 0.3),  # auburn
    ((170, 80, 170), 0.1),  # dyed
)

TOP_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "logo", "colorblock")
BOTTOM_TYPES = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder", "handbag")
HAIR_LENGTHS = ("bald", "short", "medium", "long")
HATS = ("none", "cap", "beanie")
LOGO_SHAPES = ("circle", "square", "triangle", "bar")


@dataclass(frozen=True)
class Identity:
    """Everything about a person that does not change between cameras."""

    pid: int
    width_factor: float  # 0.85 (slim) .. 1.25 (broad)
    hip_factor: float
    leg_ratio: float  # leg length / body height
    head_ratio: float  # head height / body height
    skin: Color
    hair_color: Color
    hair_length: str
    hat: str
    hat_color: Color
    top_color: Color
    top_color2: Color
    top_pattern: str
    pattern_period: float  # stripe/check period, fraction of body height
    long_sleeves: bool
    logo_shape: str
    logo_color: Color
    logo_offset: float  # -1 (left chest) .. 1 (right chest), 0 centred
    bottom_type: str
    bottom_color: Color
    tights: bool  # dark legs under a skirt/shorts
    shoe_color: Color
    bag: str
    bag_color: Color
    bag_side: int  # +1 or -1
    stride: float  # leg swing amplitude


@dataclass(frozen=True)
class View:
    """What changes per image of the same person."""

    front: bool = True
    mirror: bool = False
    phase: float = 0.0  # walking cycle phase, radians
    arm_swing: float = 0.6  # 0 .. 1


def _pick(rng: np.random.Generator, palette: tuple[tuple[Color, float], ...], jitter: int = 14) -> Color:
    weights = np.array([w for _, w in palette], dtype=np.float64)
    idx = int(rng.choice(len(palette), p=weights / weights.sum()))
    base = np.array(palette[idx][0], dtype=np.int64) + rng.integers(-jitter, jitter + 1, size=3)
    b, g, r = (int(v) for v in np.clip(base, 0, 255))
    return (b, g, r)


def _distinct(rng: np.random.Generator, palette: tuple[tuple[Color, float], ...], other: Color) -> Color:
    for _ in range(8):
        c = _pick(rng, palette)
        if sum(abs(a - b) for a, b in zip(c, other)) > 140:
            return c
    return (255 - other[0], 255 - other[1], 255 - other[2])


def sample_identity(rng: np.random.Generator, pid: int) -> Identity:
    """Draw one person from the identity model."""
    skin_i = rng.uniform(0, len(_SKIN) - 1)
    lo, frac = int(skin_i), skin_i - int(skin_i)
    hi = min(lo + 1, len(_SKIN) - 1)
    skin = tuple(int(round(a * (1 - frac) + b * frac)) for a, b in zip(_SKIN[lo], _SKIN[hi]))
    top = _pick(rng, _TOP_PALETTE)
    bottom_type = str(rng.choice(BOTTOM_TYPES, p=[0.68, 0.17, 0.15]))
    hair_length = str(rng.choice(HAIR_LENGTHS, p=[0.05, 0.45, 0.25, 0.25]))
    bag = str(rng.choice(BAGS, p=[0.35, 0.3, 0.2, 0.15]))
    return Identity(
        pid=pid,
        width_factor=float(rng.uniform(0.82, 1.28)),
        hip_factor=float(rng.uniform(0.85, 1.2)),
        leg_ratio=float(rng.uniform(0.42, 0.53)),
        head_ratio=float(rng.uniform(0.115, 0.15)),
        skin=(int(skin[0]), int(skin[1]), int(skin[2])),
        hair_color=_pick(rng, _HAIR, 10),
        hair_length=hair_length,
        hat=str(rng.choice(HATS, p=[0.72, 0.18, 0.10])),
        hat_color=_pick(rng, _TOP_PALETTE),
        top_color=top,
        top_color2=_distinct(rng, _TOP_PALETTE, top),
        top_pattern=str(rng.choice(TOP_PATTERNS, p=[0.3, 0.18, 0.1, 0.12, 0.18, 0.12])),
        pattern_period=float(rng.uniform(0.03, 0.07)),
        long_sleeves=bool(rng.random() < 0.55),
        logo_shape=str(rng.choice(LOGO_SHAPES)),
        logo_color=_distinct(rng, _TOP_PALETTE, top),
        logo_offset=float(rng.choice([-0.45, 0.0, 0.0, 0.45])),
        bottom_type=bottom_type,
        bottom_color=_pick(rng, _BOTTOM_PALETTE),
        tights=bool(rng.random() < 0.3),
        shoe_color=_pick(rng, _BOTTOM_PALETTE, 20),
        bag=bag,
        bag_color=_pick(rng, _TOP_PALETTE),
        bag_side=int(rng.choice([-1, 1])),
        stride=float(rng.uniform(0.7, 1.1)),
    )


@lru_cache(maxsize=4096)
def identity_for(seed: int, pid: int) -> Identity:
    """The identity ``pid`` of the population drawn with ``seed`` (same in crops and scenes)."""
    return sample_identity(np.random.default_rng([seed, 101, pid]), pid)


def figure_width(identity: Identity, height: float) -> float:
    """Approximate width (px) of the drawn figure, arms and bag included, for a body ``height``."""
    extra = 0.16 if identity.bag in ("shoulder", "handbag") else 0.0
    return height * (0.36 * identity.width_factor + 0.08 + extra)


_SHIFT = 3
_SCALE = 1 << _SHIFT


def _pts(points: list[tuple[float, float]]) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _SCALE).astype(np.int32)


def _shade(c: Color, f: float) -> Color:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


class _Painter:
    """Draws filled shapes into a BGR canvas and an alpha mask at sub-pixel precision."""

    def __init__(self, canvas: np.ndarray, mask: np.ndarray | None) -> None:
        self.canvas = canvas
        self.mask = mask

    def poly(self, points: list[tuple[float, float]], color: Color) -> None:
        p = _pts(points)
        cv2.fillPoly(self.canvas, [p], color, cv2.LINE_AA, _SHIFT)
        if self.mask is not None:
            cv2.fillPoly(self.mask, [p], 255, cv2.LINE_AA, _SHIFT)

    def ellipse(
        self,
        center: tuple[float, float],
        axes: tuple[float, float],
        color: Color,
        start: float = 0.0,
        end: float = 360.0,
        angle: float = 0.0,
    ) -> None:
        c = (int(round(center[0] * _SCALE)), int(round(center[1] * _SCALE)))
        a = (max(1, int(round(axes[0] * _SCALE))), max(1, int(round(axes[1] * _SCALE))))
        cv2.ellipse(self.canvas, c, a, angle, start, end, color, -1, cv2.LINE_AA, _SHIFT)
        if self.mask is not None:
            cv2.ellipse(self.mask, c, a, angle, start, end, 255, -1, cv2.LINE_AA, _SHIFT)

    def limb(
        self, p0: tuple[float, float], p1: tuple[float, float], w0: float, w1: float, color: Color
    ) -> list[tuple[float, float]]:
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        n = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / n, dx / n
        quad = [
            (p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2),
            (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
            (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2),
            (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2),
        ]
        self.poly(quad, color)
        self.ellipse(p1, (w1 / 2, w1 / 2), color)
        return quad

    def textured(self, shapes: list[list[tuple[float, float]]], texture: np.ndarray) -> None:
        """Fill polygons with a texture image of the canvas size (hard edges; blur smooths them)."""
        region = np.zeros(self.canvas.shape[:2], np.uint8)
        cv2.fillPoly(region, [_pts(s) for s in shapes], 255, cv2.LINE_8, _SHIFT)
        sel = region > 0
        self.canvas[sel] = texture[sel]
        if self.mask is not None:
            cv2.fillPoly(self.mask, [_pts(s) for s in shapes], 255, cv2.LINE_AA, _SHIFT)


def _top_texture(
    identity: Identity,
    shape: tuple[int, int],
    origin: tuple[float, float],
    hp: float,
    ys: float,
    yh: float,
    front: bool,
) -> np.ndarray:
    h, w = shape
    tex = np.empty((h, w, 3), np.uint8)
    tex[:] = identity.top_color
    period = max(2.0, identity.pattern_period * hp)
    pattern = identity.top_pattern
    ys_idx = np.arange(h, dtype=np.float32)[:, None]
    xs_idx = np.arange(w, dtype=np.float32)[None, :]
    if pattern == "hstripes":
        sel = (np.floor((ys_idx - ys) / period) % 2 == 1) & np.ones((1, w), bool)
        tex[sel] = identity.top_color2
    elif pattern == "vstripes":
        sel = (np.floor((xs_idx - origin[0]) / period) % 2 == 1) & np.ones((h, 1), bool)
        tex[sel] = identity.top_color2
    elif pattern == "checks":
        a = np.floor((ys_idx - ys) / (period * 1.4)) % 2
        b = np.floor((xs_idx - origin[0]) / (period * 1.4)) % 2
        tex[(a + b) == 1] = identity.top_color2
    elif pattern == "colorblock":
        cut = ys + (yh - ys) * (0.45 if front else 0.55)
        sel = (ys_idx > cut) & np.ones((1, w), bool)
        tex[sel] = identity.top_color2
    return tex


@dataclass(frozen=True)
class _Figure:
    """Where the body parts of one drawn person go (px); every part is drawn from these."""

    p: _Painter
    identity: Identity
    view: View
    cx: float
    top: float
    hp: float

    @property
    def s(self) -> float:  # mirror sign
        return -1.0 if self.view.mirror else 1.0

    def X(self, dx: float) -> float:  # noqa: N802 - a coordinate helper, reads like maths
        return self.cx + self.s * dx

    @property
    def wf(self) -> float:
        return self.identity.width_factor

    @property
    def head_h(self) -> float:
        return self.hp * self.identity.head_ratio

    @property
    def head_w(self) -> float:
        return self.head_h * 0.78

    @property
    def ys(self) -> float:  # shoulders
        return self.top + self.head_h + 0.03 * self.hp

    @property
    def leg_len(self) -> float:
        return self.hp * self.identity.leg_ratio

    @property
    def yh(self) -> float:  # hips
        return self.top + self.hp - self.leg_len

    @property
    def sw(self) -> float:  # shoulder half-width
        return 0.115 * self.hp * self.wf

    @property
    def hw(self) -> float:  # hip half-width
        return 0.085 * self.hp * self.wf * self.identity.hip_factor

    @property
    def swing(self) -> float:
        return math.sin(self.view.phase) * self.identity.stride


def draw_figure(
    canvas: np.ndarray,
    identity: Identity,
    view: View,
    cx: float,
    top: float,
    hp: float,
    mask: np.ndarray | None = None,
) -> None:
    """Paint ``identity`` into ``canvas`` (BGR uint8, in place), body ``hp`` px tall.

    Back to front: long hair, legs and the lower garment, the far arm, neck and torso (pattern,
    logo), bags, the near arm, then the head.

    Args:
        canvas: BGR uint8 image to draw into.
        identity: the person.
        view: front/back, mirror, walking phase.
        cx: horizontal centre of the body (px).
        top: y of the top of the head (px); the feet are at ``top + hp``.
        hp: body height in px.
        mask: optional uint8 mask of the canvas size; the figure's pixels are set to 255.
    """
    f = _Figure(_Painter(canvas, mask), identity, view, cx, top, hp)
    _draw_long_hair(f)
    _draw_legs(f)
    _draw_lower_garment(f)
    arms = _arm_positions(f)
    swing = f.swing
    _draw_neck(f)
    _draw_arm(f, *arms[0], 0.85 if swing > 0 else 1.0)
    _draw_torso(f, canvas.shape[:2])
    _draw_bag(f)
    _draw_arm(f, *arms[1], 0.85 if swing <= 0 else 1.0)
    _draw_head(f)


def _draw_long_hair(f: _Figure) -> None:
    """Long hair hangs behind the body: drawn first."""
    identity, cx, top, hp, head_w, head_h, ys = f.identity, f.cx, f.top, f.hp, f.head_w, f.head_h, f.ys
    if identity.hair_length == "long" and identity.hat != "beanie":
        hair_bottom = ys + 0.14 * hp if not f.view.front else ys + 0.06 * hp
        f.p.poly(
            [
                (cx - head_w * 0.62, top + head_h * 0.4),
                (cx + head_w * 0.62, top + head_h * 0.4),
                (cx + head_w * 0.75, hair_bottom),
                (cx - head_w * 0.75, hair_bottom),
            ],
            identity.hair_color,
        )


def _draw_legs(f: _Figure) -> None:
    """Legs and shoes: the back leg darker; the foot's x offset gives a walking stride."""
    identity, p, hp, hw, yh, X, s = f.identity, f.p, f.hp, f.hw, f.yh, f.X, f.s
    ph, swing, skin, feet = f.view.phase, f.swing, identity.skin, f.top + f.hp
    leg_w0, leg_w1 = 0.085 * hp * f.wf, 0.05 * hp
    lower = identity.bottom_type
    legs = []
    for side, sign in ((-1.0, 1.0), (1.0, -1.0)):
        foot_dx = side * hw * 0.45 + sign * swing * 0.11 * hp
        lift = 0.025 * hp * max(0.0, sign * math.cos(ph))
        hip = (X(side * hw * 0.5), yh)
        foot = (X(foot_dx), feet - lift - 0.02 * hp)
        legs.append((hip, foot, sign))
    legs.sort(key=lambda t: t[2] * swing)  # the leg stepping back is drawn first
    for idx, (hip, foot, _sign) in enumerate(legs):
        shade = 0.82 if idx == 0 else 1.0
        leg_color = skin if lower in ("shorts", "skirt") and not identity.tights else (30, 30, 34)
        if lower == "trousers":
            leg_color = identity.bottom_color
        p.limb(hip, foot, leg_w0, leg_w1, _shade(leg_color, shade))
        if lower == "shorts":
            knee = (hip[0] + (foot[0] - hip[0]) * 0.42, hip[1] + (foot[1] - hip[1]) * 0.42)
            p.limb(hip, knee, leg_w0 * 1.15, leg_w0 * 1.0, _shade(identity.bottom_color, shade))
        p.ellipse(
            (foot[0] + s * 0.012 * hp, foot[1] + 0.012 * hp),
            (0.035 * hp, 0.018 * hp),
            _shade(identity.shoe_color, shade),
        )


def _draw_lower_garment(f: _Figure) -> None:
    """Trousers/shorts waist, or a flared skirt."""
    identity, hp, hw, yh, X = f.identity, f.hp, f.hw, f.yh, f.X
    if identity.bottom_type in ("trousers", "shorts"):
        f.p.poly(
            [
                (X(-hw), yh - 0.02 * hp),
                (X(hw), yh - 0.02 * hp),
                (X(hw * 0.9), yh + 0.09 * hp),
                (X(-hw * 0.9), yh + 0.09 * hp),
            ],
            identity.bottom_color,
        )
    else:  # skirt
        flare = hw * 1.55
        f.p.poly(
            [
                (X(-hw), yh - 0.02 * hp),
                (X(hw), yh - 0.02 * hp),
                (X(flare), yh + 0.45 * f.leg_len),
                (X(-flare), yh + 0.45 * f.leg_len),
            ],
            identity.bottom_color,
        )


def _arm_width(f: _Figure) -> float:
    return 0.055 * f.hp * min(f.wf, 1.15)


def _arm_positions(f: _Figure) -> list[tuple[float, tuple[float, float], tuple[float, float]]]:
    """``(side, shoulder, hand)`` of both arms; they swing opposite to the legs."""
    hp, s, swing = f.hp, f.s, f.swing
    arm_len = 0.36 * hp
    arm_w = _arm_width(f)
    arms = []
    for side in (-1.0, 1.0):
        a = -side * swing * f.view.arm_swing * 0.5
        shoulder = (f.X(side * (f.sw - arm_w * 0.45)), f.ys + 0.02 * hp)
        hand = (
            shoulder[0] + s * side * 0.04 * hp + s * math.sin(a) * 0.10 * hp,
            shoulder[1] + arm_len * (0.93 + 0.07 * math.cos(a)),
        )
        arms.append((side, shoulder, hand))
    return arms


def _bag_side(f: _Figure) -> float:
    return f.identity.bag_side * (1 if f.view.front else -1)


def _draw_arm(f: _Figure, side: float, shoulder: tuple[float, float], hand: tuple[float, float],
              shade: float) -> None:
    """Sleeve, forearm (short sleeves), hand, and a handbag on the bag side."""
    identity, p, hp, skin, arm_w = f.identity, f.p, f.hp, f.identity.skin, _arm_width(f)
    sleeve = 1.0 if identity.long_sleeves else 0.42
    elbow = (
        shoulder[0] + (hand[0] - shoulder[0]) * sleeve,
        shoulder[1] + (hand[1] - shoulder[1]) * sleeve,
    )
    if not identity.long_sleeves:
        p.limb(elbow, hand, arm_w * 0.85, arm_w * 0.75, _shade(skin, shade))
    p.limb(shoulder, elbow, arm_w, arm_w * 0.9, _shade(identity.top_color, shade))
    p.ellipse(hand, (arm_w * 0.5, arm_w * 0.55), _shade(skin, shade))
    if identity.bag == "handbag" and side == _bag_side(f):
        bw, bh = 0.10 * hp, 0.085 * hp
        p.poly(
            [
                (hand[0] - bw / 2, hand[1] + 0.01 * hp),
                (hand[0] + bw / 2, hand[1] + 0.01 * hp),
                (hand[0] + bw / 2, hand[1] + bh),
                (hand[0] - bw / 2, hand[1] + bh),
            ],
            identity.bag_color,
        )


def _draw_neck(f: _Figure) -> None:
    cx, top, hp, head_w, head_h, ys = f.cx, f.top, f.hp, f.head_w, f.head_h, f.ys
    f.p.poly(
        [
            (cx - head_w * 0.22, top + head_h * 0.8),
            (cx + head_w * 0.22, top + head_h * 0.8),
            (cx + head_w * 0.24, ys + 0.01 * hp),
            (cx - head_w * 0.24, ys + 0.01 * hp),
        ],
        _shade(f.identity.skin, 0.9),
    )


def _draw_torso(f: _Figure, shape: tuple[int, int]) -> None:
    """The top garment with its pattern, and a logo on the front."""
    identity, p, hp, sw, hw, ys, yh, X = f.identity, f.p, f.hp, f.sw, f.hw, f.ys, f.yh, f.X
    torso = [
        (X(-sw * 0.72), ys - 0.01 * hp),
        (X(sw * 0.72), ys - 0.01 * hp),
        (X(sw), ys + 0.035 * hp),
        (X(hw * 1.05), yh + 0.03 * hp),
        (X(-hw * 1.05), yh + 0.03 * hp),
        (X(-sw), ys + 0.035 * hp),
    ]
    if identity.top_pattern == "plain" or (identity.top_pattern == "logo"):
        p.poly(torso, identity.top_color)
    else:
        tex = _top_texture(identity, shape, (f.cx, f.top), hp, ys, yh, f.view.front)
        p.textured([torso], tex)
    if f.view.front and identity.top_pattern == "logo":
        _draw_logo(f)


def _draw_logo(f: _Figure) -> None:
    identity, p, hp = f.identity, f.p, f.hp
    lx, ly, r = f.X(identity.logo_offset * f.sw * 0.6), f.ys + 0.09 * hp, 0.045 * hp
    if identity.logo_offset == 0.0:
        r *= 1.5
        ly += 0.02 * hp
    shape = identity.logo_shape
    if shape == "circle":
        p.ellipse((lx, ly), (r, r), identity.logo_color)
    elif shape == "square":
        p.poly(
            [(lx - r, ly - r), (lx + r, ly - r), (lx + r, ly + r), (lx - r, ly + r)], identity.logo_color
        )
    elif shape == "triangle":
        p.poly(
            [(lx, ly - r * 1.1), (lx + r * 1.1, ly + r * 0.9), (lx - r * 1.1, ly + r * 0.9)],
            identity.logo_color,
        )
    else:
        p.poly(
            [
                (lx - r * 1.4, ly - r * 0.45),
                (lx + r * 1.4, ly - r * 0.45),
                (lx + r * 1.4, ly + r * 0.45),
                (lx - r * 1.4, ly + r * 0.45),
            ],
            identity.logo_color,
        )


def _draw_bag(f: _Figure) -> None:
    """Backpack (straps in front, the pack behind) or a shoulder bag; handbags go with the arm."""
    identity, p, hp, sw, hw, ys, yh, X = f.identity, f.p, f.hp, f.sw, f.hw, f.ys, f.yh, f.X
    if identity.bag == "backpack":
        if f.view.front:
            for side in (-1.0, 1.0):
                x0 = X(side * sw * 0.55)
                p.poly(
                    [
                        (x0 - 0.018 * hp, ys - 0.005 * hp),
                        (x0 + 0.018 * hp, ys - 0.005 * hp),
                        (x0 + 0.015 * hp, ys + 0.17 * hp),
                        (x0 - 0.015 * hp, ys + 0.17 * hp),
                    ],
                    _shade(identity.bag_color, 0.8),
                )
        else:
            bw = sw * 0.85
            bt, bb = ys + 0.005 * hp, ys + (yh - ys) * 0.82
            p.poly(
                [
                    (X(-bw), bt + 0.03 * hp),
                    (X(-bw * 0.8), bt),
                    (X(bw * 0.8), bt),
                    (X(bw), bt + 0.03 * hp),
                    (X(bw * 1.02), bb),
                    (X(-bw * 1.02), bb),
                ],
                identity.bag_color,
            )
            p.poly(
                [
                    (X(-bw * 0.7), bt + (bb - bt) * 0.5),
                    (X(bw * 0.7), bt + (bb - bt) * 0.5),
                    (X(bw * 0.7), bb - 0.01 * hp),
                    (X(-bw * 0.7), bb - 0.01 * hp),
                ],
                _shade(identity.bag_color, 0.75),
            )
    elif identity.bag == "shoulder":
        bag_side = _bag_side(f)
        strap_from = (X(-bag_side * sw * 0.6), ys)
        bag_x = X(bag_side * (hw + 0.03 * hp))
        strap_to = (bag_x, yh - 0.02 * hp)
        p.limb(strap_from, strap_to, 0.022 * hp, 0.022 * hp, _shade(identity.bag_color, 0.7))
        bw, bh = 0.085 * hp, 0.11 * hp
        p.poly(
            [
                (bag_x - bw, yh - 0.04 * hp),
                (bag_x + bw, yh - 0.04 * hp),
                (bag_x + bw, yh - 0.04 * hp + bh),
                (bag_x - bw, yh - 0.04 * hp + bh),
            ],
            identity.bag_color,
        )


def _draw_head(f: _Figure) -> None:
    """Face (front) or the back of the head; hair and hat."""
    identity, p, cx, top, hp, head_w, head_h = f.identity, f.p, f.cx, f.top, f.hp, f.head_w, f.head_h
    front, skin = f.view.front, identity.skin
    hc = (cx, top + head_h * 0.5)
    hair = identity.hair_color
    p.ellipse(hc, (head_w * 0.5, head_h * 0.5), skin)
    if identity.hair_length != "bald":
        if front:
            p.ellipse(hc, (head_w * 0.53, head_h * 0.53), hair, 180, 360)
            if identity.hair_length in ("medium", "long"):
                for side in (-1.0, 1.0):
                    p.poly(
                        [
                            (cx + side * head_w * 0.53, hc[1] - 0.01 * hp),
                            (cx + side * head_w * 0.36, hc[1] - 0.01 * hp),
                            (cx + side * head_w * 0.4, top + head_h * 1.0),
                            (cx + side * head_w * 0.56, top + head_h * 1.0),
                        ],
                        hair,
                    )
            eye_y, eye_dx = hc[1] + head_h * 0.05, head_w * 0.2
            er = max(0.4, head_h * 0.05)
            for side in (-1.0, 1.0):
                p.ellipse((cx + side * eye_dx, eye_y), (er, er), (30, 30, 40))
        else:
            p.ellipse(hc, (head_w * 0.53, head_h * 0.53), hair)
            if identity.hair_length == "short":
                p.ellipse((cx, top + head_h * 0.97), (head_w * 0.3, head_h * 0.12), _shade(skin, 0.9))
    elif not front:
        p.ellipse(hc, (head_w * 0.5, head_h * 0.5), _shade(skin, 0.9))
    if identity.hat == "cap":
        p.ellipse(hc, (head_w * 0.56, head_h * 0.55), identity.hat_color, 180, 360)
        if front:
            p.ellipse((cx, hc[1]), (head_w * 0.62, head_h * 0.12), _shade(identity.hat_color, 0.8))
    elif identity.hat == "beanie":
        p.ellipse((cx, hc[1] + head_h * 0.05), (head_w * 0.56, head_h * 0.6), identity.hat_color, 180, 360)
