"""Camera layout YAML: camera names, frame rates and allowed transitions with travel times.

Example::

    cameras:
      - {name: cam1, fps: 10}
      - {name: cam2, source: rtsp://10.0.0.2/stream}
    transitions:
      - {from: cam1, to: cam2, min_s: 2, max_s: 60}
      - {from: cam2, to: cam1, min_s: 2, max_s: 60}

When a layout gives transitions, a person may only go from camera A to camera B along a listed
transition, arriving ``min_s..max_s`` seconds after leaving A (re-appearing in the same camera
is always allowed). Without a layout every cross-camera transition is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import from_dict
from ..errors import ConfigError


@dataclass(frozen=True)
class CameraSpec:
    name: str
    source: str | None = None
    fps: float | None = None


@dataclass(frozen=True)
class Transition:
    """A person may leave ``src`` and appear in ``dst`` between ``min_s`` and ``max_s`` seconds later."""

    src: str
    dst: str
    min_s: float = 0.0
    max_s: float = float("inf")

    def __post_init__(self) -> None:
        if self.min_s < 0 or self.max_s < self.min_s:
            raise ConfigError(f"transition {self.src}->{self.dst}: need 0 <= min_s <= max_s")


@dataclass(frozen=True)
class CameraLayout:
    cameras: tuple[CameraSpec, ...] = ()
    transitions: tuple[Transition, ...] = ()
    restrict_transitions: bool = field(default=False)

    def fps_by_name(self) -> dict[str, float]:
        return {c.name: float(c.fps) for c in self.cameras if c.fps}

    def allowed(self, src: str, dst: str, gap_s: float) -> bool:
        """May a person last seen in ``src`` appear in ``dst`` ``gap_s`` seconds later?

        Same camera: always. No restriction (no transitions listed): always. Otherwise one
        listed ``src -> dst`` transition must hold ``min_s <= gap_s <= max_s``.
        """
        if src == dst or not self.restrict_transitions:
            return True
        return any(t.src == src and t.dst == dst and t.min_s <= gap_s <= t.max_s for t in self.transitions)


def layout_from_dict(data: dict[str, Any], where: str = "layout") -> CameraLayout:
    """Build a :class:`CameraLayout` from parsed YAML (``from``/``to`` keys for transitions)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'cameras' and/or 'transitions'")
    unknown = set(data) - {"cameras", "transitions"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (valid keys: cameras, transitions)")
    cams = []
    for i, c in enumerate(data.get("cameras") or []):
        if isinstance(c, str):
            c = {"name": c}
        cams.append(from_dict(CameraSpec, c, f"{where}.cameras[{i}]"))
    trans = []
    for i, t in enumerate(data.get("transitions") or []):
        if not isinstance(t, dict):
            raise ConfigError(f"{where}.transitions[{i}]: expected a mapping")
        t = dict(t)
        for a, b in (("from", "src"), ("to", "dst")):
            if a in t:
                t[b] = t.pop(a)
        missing = {"src", "dst"} - set(t)
        if missing:
            raise ConfigError(f"{where}.transitions[{i}]: needs 'from' and 'to'")
        trans.append(from_dict(Transition, t, f"{where}.transitions[{i}]"))
    names = [c.name for c in cams]
    if names:
        for t in trans:
            for n in (t.src, t.dst):
                if n not in names:
                    raise ConfigError(f"{where}: transition names camera '{n}', not among cameras {names}")
    return CameraLayout(tuple(cams), tuple(trans), restrict_transitions=bool(trans))


def load_layout(path: str | Path) -> CameraLayout:
    """Read a layout YAML file.

    Raises:
        ConfigError: missing file, invalid YAML, unknown keys or inconsistent transitions.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"layout file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"layout file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return layout_from_dict(data, where=str(p))
