"""Result writers, flushed as the run goes so that a crash keeps what was done.

- ``DIR/<camera>.txt``: MOTChallenge ``frame,id,x,y,w,h,conf,-1,-1,-1`` with GLOBAL ids. Rows of
  a tracklet are written once its global id is decided (see :mod:`.associate`), so a file is
  ordered by decision time, not strictly by frame; readers sort.
- ``DIR/mtmc.txt``: AI City ``camera_id obj_id frame_id xmin ymin width height xworld yworld``,
  camera ids in ``--cameras`` order, world coordinates -1.
- ``DIR/events.jsonl``: one JSON line per finished tracklet.
- ``DIR/summary.json``: written atomically at the end (also after Ctrl-C).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ..io import atomic_write_json
from .motfile import mot_line, mtmc_line

Row = tuple[int, float, float, float, float, float]  # frame, x, y, w, h, conf


class ResultWriter:
    """Opens every streaming output of one run; call :meth:`close` (or use as a context manager)."""

    def __init__(self, out_dir: str | Path, cameras: list[tuple[str, int]]) -> None:
        """``cameras``: ``(name, camera_id)`` pairs."""
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.camera_ids = dict(cameras)
        self._mot: dict[str, IO[str]] = {
            name: open(self.out_dir / f"{name}.txt", "w", buffering=1) for name, _ in cameras}
        self._mtmc = open(self.out_dir / "mtmc.txt", "w", buffering=1)
        self._events = open(self.out_dir / "events.jsonl", "w", buffering=1)
        self.rows_written = 0

    def write_rows(self, camera: str, gid: int, rows: list[Row]) -> None:
        """Write a tracklet's rows (MOT and MTMC) and flush."""
        if not rows:
            return
        cid = self.camera_ids[camera]
        self._mot[camera].write("".join(mot_line(f, gid, x, y, w, h, c) for f, x, y, w, h, c in rows))
        self._mtmc.write("".join(mtmc_line(cid, gid, f, x, y, w, h) for f, x, y, w, h, _ in rows))
        self._mot[camera].flush()
        self._mtmc.flush()
        self.rows_written += len(rows)

    def write_event(self, event: dict[str, Any]) -> None:
        self._events.write(json.dumps(event, sort_keys=True) + "\n")
        self._events.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.out_dir / "summary.json", summary)

    def close(self) -> None:
        for h in [*self._mot.values(), self._mtmc, self._events]:
            if not h.closed:
                h.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def identity_colour(gid: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per global id (golden-ratio hue steps)."""
    import colorsys

    h = (gid * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def annotate(frame: Any, boxes: list[tuple[float, float, float, float, int | None, int]]) -> Any:
    """Draw ``(x, y, w, h, gid or None, local id)`` boxes on a BGR frame in place."""
    import cv2

    for x, y, w, h, gid, tid in boxes:
        colour = identity_colour(gid) if gid is not None else (160, 160, 160)
        p1, p2 = (int(x), int(y)), (int(x + w), int(y + h))
        cv2.rectangle(frame, p1, p2, colour, 2)
        label = f"ID {gid}" if gid is not None else f"t{tid}?"
        cv2.putText(frame, label, (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
    return frame
