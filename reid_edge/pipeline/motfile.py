"""MOTChallenge text files: one parser for det, gt and result files, and the writers' line formats.

A MOT row is ``frame, id, x, y, w, h, conf[, class/x, visibility/y, z]``, comma- or
whitespace-separated. Detection files (``det.txt``) carry ``-1`` ids and a confidence; ground
truth uses the 7th column as a *consider* flag (0: ignore the row); tracker results carry ids.
Everything here is numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

Tracks = dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (ids [N], boxes [N, 4])


def read_mot_rows(path: str | Path, min_values: int = 6, what: str = "MOT file") -> np.ndarray:
    """Every row of a MOT file as float64 ``[R, 7]`` (missing 7th column: 1.0).

    Args:
        path: the file.
        min_values: a row with fewer numbers is an error (6 for results/gt, 7 for detections).
        what: named in error messages.
    Raises:
        DataError: unreadable file or malformed row.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DataError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    rows: list[list[float]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = [q for q in (line.replace(" ", ",").split(",") if "," in line else line.split()) if q.strip()]
        try:
            vals = [float(q) for q in parts[:7]]
        except ValueError:
            raise DataError(f"{p}:{n}: not a MOT row: {line[:60]!r}") from None
        if len(vals) < min_values:
            raise DataError(f"{p}:{n}: a MOT row needs >= {min_values} values, got {len(vals)}")
        rows.append(vals + [1.0] * (7 - len(vals)))
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def _by_frame(rows: np.ndarray) -> dict[int, np.ndarray]:
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    frames, starts = np.unique(rows[:, 0], return_index=True)
    return {int(f): r for f, r in zip(frames, np.split(rows, starts[1:]))}


def read_mot_detections(path: str | Path) -> dict[int, np.ndarray]:
    """A det file as ``{frame: float32 [N, 5]}`` (x, y, w, h, conf).

    Raises:
        DataError: unreadable file or a row with fewer than 7 numbers.
    """
    return {f: r[:, 2:7].astype(np.float32) for f, r in _by_frame(read_mot_rows(path, 7, "detections")).items()}


def read_mot_tracks(path: str | Path, is_gt: bool = False, scale: float = 1.0) -> Tracks:
    """A result or ground-truth file as ``{frame: (ids [N], boxes [N, 4])}``.

    Args:
        is_gt: drop rows whose 7th column (consider flag) is 0.
        scale: multiply boxes (ground truth annotated at another resolution than the video).
    Raises:
        DataError: unreadable file or malformed row.
    """
    rows = read_mot_rows(path, min_values=6)
    if is_gt:
        rows = rows[rows[:, 6] != 0]
    return {f: (r[:, 1].astype(np.int64), r[:, 2:6] * scale) for f, r in _by_frame(rows).items()}


def mot_line(frame: int, gid: int, x: float, y: float, w: float, h: float, conf: float) -> str:
    """A MOTChallenge result row ``frame,id,x,y,w,h,conf,-1,-1,-1``."""
    return f"{frame},{gid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf:.3f},-1,-1,-1\n"


def det_line(frame: int, x: float, y: float, w: float, h: float, conf: float) -> str:
    """A MOTChallenge detection row ``frame,-1,x,y,w,h,conf,-1,-1,-1``, with the digits that give a float32
    box back exactly (:func:`read_mot_detections`)."""
    return f"{frame},-1,{x:.9g},{y:.9g},{w:.9g},{h:.9g},{conf:.9g},-1,-1,-1\n"


def mtmc_line(camera_id: int, gid: int, frame: int, x: float, y: float, w: float, h: float) -> str:
    """An AI City MTMC row ``camera_id obj_id frame_id xmin ymin width height xworld yworld``."""
    return f"{camera_id} {gid} {frame} {int(round(x))} {int(round(y))} {int(round(w))} {int(round(h))} -1 -1\n"
