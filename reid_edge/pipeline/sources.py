"""Camera inputs: video files, RTSP/HTTP URLs, webcam indices and image-sequence folders.

Every source yields :class:`Frame` objects numbered from 1 by position in the stream, so that a
skipped corrupt frame keeps the numbering of precomputed detections and ground truth aligned.
Files simply end; URLs that drop are reopened with exponential backoff.
"""

from __future__ import annotations

import configparser
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import PipelineError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Frame:
    """One decoded frame: 1-based ``index`` in its stream, time in seconds from the start."""

    index: int
    image: np.ndarray
    time_s: float


def source_kind(spec: str) -> str:
    """``url`` | ``webcam`` | ``folder`` | ``file`` for a ``--cameras`` entry."""
    if _URL.match(spec):
        return "url"
    if spec.isdigit():
        return "webcam"
    if Path(spec).is_dir():
        return "folder"
    return "file"


def default_camera_name(spec: str) -> str:
    """File stem, folder name (the sequence's, for a MOT ``img1/`` folder), ``webcamN`` or the URL host."""
    kind = source_kind(spec)
    if kind == "webcam":
        return f"webcam{spec}"
    if kind == "url":
        rest = _URL.sub("", spec).split("/")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(x for x in rest if x))
        return name[:60] or "stream"
    p = Path(spec.rstrip("/"))
    if kind == "folder" and p.name == "img1":
        return p.parent.name
    return p.stem if kind == "file" else p.name


def _valid(image: np.ndarray | None) -> bool:
    return image is not None and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


class FrameSource:
    """A camera stream. ``read()`` returns the next :class:`Frame` or None at the end."""

    def __init__(self, spec: str, name: str, fps: float | None = None, max_reconnects: int = 5,
                 backoff_s: float = 0.5, max_corrupt_run: int = 25,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self.name = name
        self.kind = source_kind(spec)
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.max_corrupt_run = max_corrupt_run
        self._sleep = sleep
        self.corrupt_frames = 0
        self.reconnects = 0
        self._attempts = 0
        self.position = 0
        self.width = 0
        self.height = 0
        self._cap: cv2.VideoCapture | None = None
        self._files: list[Path] = []
        self.frame_count: int | None = None
        self.camera_id = 1
        self._open()
        self.fps = float(fps) if fps else self._probe_fps()

    def _open(self) -> None:
        if self.kind == "folder":
            root = Path(self.spec)
            img_dir = root / "img1" if (root / "img1").is_dir() else root
            self._files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not self._files:
                raise PipelineError(f"camera '{self.name}': no images in {img_dir}")
            first = cv2.imread(str(self._files[0]))
            if first is not None:
                self.height, self.width = first.shape[:2]
            self.frame_count = len(self._files)
            return
        if self.kind == "file" and not Path(self.spec).is_file():
            raise PipelineError(f"camera '{self.name}': {self.spec} does not exist")
        cap = cv2.VideoCapture(int(self.spec) if self.kind == "webcam" else self.spec)
        if not cap.isOpened():
            cap.release()
            raise PipelineError(f"camera '{self.name}': cannot open {self.spec}")
        self._cap = cap
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = n if self.kind == "file" and n > 0 else None

    def _probe_fps(self) -> float:
        if self.kind == "folder":
            ini = Path(self.spec) / "seqinfo.ini"
            if ini.is_file():
                cp = configparser.ConfigParser()
                cp.read(ini)
                rate = cp.get("Sequence", "frameRate", fallback="")
                if rate.replace(".", "", 1).isdigit():
                    return float(rate)
            return 10.0
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0.0
        return float(fps) if fps and 0 < fps < 1000 else 10.0

    def _reconnect(self) -> bool:
        """Reopen a dropped URL stream with exponential backoff; False when retries are spent.

        ``max_reconnects`` bounds the attempts in a row; a good frame resets the count.
        """
        while self._attempts < self.max_reconnects:
            self._sleep(self.backoff_s * (2 ** self._attempts))
            self._attempts += 1
            self.reconnects += 1
            if self._cap is not None:
                self._cap.release()
            cap = cv2.VideoCapture(self.spec)
            if cap.isOpened():
                self._cap = cap
                return True
            cap.release()
        return False

    def read(self) -> Frame | None:
        """The next good frame; corrupt frames are skipped and counted."""
        run = 0
        while True:
            if self.kind == "folder":
                if self.position >= len(self._files):
                    return None
                image = cv2.imread(str(self._files[self.position]))
                self.position += 1
                ok = image is not None
            else:
                assert self._cap is not None
                ok, image = self._cap.read()
                if not ok:
                    if self.kind == "url" and self._reconnect():
                        continue
                    if self.kind == "file" and self.frame_count and self.position + 1 < self.frame_count \
                            and run < self.max_corrupt_run:
                        # a decode error before the known end: skip the frame, keep going
                        self.position += 1
                        self.corrupt_frames += 1
                        run += 1
                        continue
                    return None
                self.position += 1
            if ok and image is not None and _valid(image):
                self._attempts = 0
                if not self.width:
                    self.height, self.width = image.shape[:2]
                return Frame(self.position, image, (self.position - 1) / self.fps)
            self.corrupt_frames += 1
            run += 1
            if run > self.max_corrupt_run and self.kind != "folder":
                return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_sources(specs: list[str], names: list[str] | None = None, fps: dict[str, float] | None = None,
                 skip_bad: bool = False, warn: Callable[[str], None] | None = None) -> list[FrameSource]:
    """Open every camera; a camera that cannot be opened raises unless ``skip_bad``.

    Raises:
        PipelineError: a camera cannot be opened, names are duplicated or do not match in number.
    """
    if not specs:
        raise PipelineError("no cameras given (use --cameras cam1.mp4 cam2.mp4 ...)")
    if names is not None and len(names) != len(specs):
        raise PipelineError(f"--camera-names has {len(names)} names for {len(specs)} cameras")
    names = list(names) if names else [default_camera_name(s) for s in specs]
    if len(set(names)) != len(names):
        raise PipelineError(f"camera names must be unique, got {names} (use --camera-names)")
    sources: list[FrameSource] = []
    for i, (spec, name) in enumerate(zip(specs, names)):
        try:
            src = FrameSource(spec, name, fps=(fps or {}).get(name))
            src.camera_id = i + 1  # numbered in the order of --cameras, skipped ones included
            sources.append(src)
        except PipelineError as exc:
            if not skip_bad:
                for s in sources:
                    s.close()
                raise
            if warn:
                warn(f"skipping camera: {exc}")
    if not sources:
        raise PipelineError("no camera could be opened")
    return sources
