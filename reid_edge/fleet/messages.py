"""The content of one edge step on the wire, and its decoding on the associator.

A step carries the tracklets the edge asks to decide at that step (``d``) and the updates of
tracklets it already submitted (``u``), as :class:`~reid_edge.pipeline.associate.TrackletEvent`
fields. The pipeline sends an update whenever a tracklet's end time moves, i.e. every frame a
decided person is seen; so that this stays small, an update carries the appearance arrays only
when they changed since the edge last sent them (:class:`DeltaEncoder`), and the associator
fills them back in (:class:`DeltaDecoder`). Both ends therefore hand the associator exactly the
events the single-process pipeline hands it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pipeline.associate import TrackletEvent
from .codec import pack, unpack

_UNCHANGED = "="


def _event_dict(ev: TrackletEvent, arrays: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"id": ev.event_id, "cam": ev.camera, "t0": ev.start_s, "t1": ev.end_s,
                         "w": ev.weight, "fin": ev.final}
    if arrays:
        d["g"], d["s"] = ev.global_, ev.stripes
    else:
        d["g"] = _UNCHANGED
    return d


class DeltaEncoder:
    """Edge side: encodes a step, leaving out appearance arrays the associator already has."""

    def __init__(self) -> None:
        self._sent: dict[str, float] = {}  # event id -> weight last sent with its arrays

    def encode(self, decide: list[TrackletEvent], update: list[TrackletEvent]) -> bytes:
        out_d = []
        for ev in decide:
            out_d.append(_event_dict(ev, True))
            self._sent[ev.event_id] = ev.weight
        out_u = []
        for ev in update:
            changed = self._sent.get(ev.event_id) != ev.weight
            out_u.append(_event_dict(ev, changed))
            if ev.final:
                self._sent.pop(ev.event_id, None)
            elif changed:
                self._sent[ev.event_id] = ev.weight
        return pack({"d": out_d, "u": out_u})


class DeltaDecoder:
    """Associator side: turns step payloads back into full :class:`TrackletEvent` values."""

    def __init__(self) -> None:
        self._arrays: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}
        self.missing = 0  # updates whose arrays were never received (an edge's dropped outbox rows)

    def _event(self, d: dict[str, Any]) -> TrackletEvent | None:
        eid = str(d["id"])
        g = d.get("g")
        if isinstance(g, str) and g == _UNCHANGED:
            prev = self._arrays.get(eid)
            if prev is None:
                self.missing += 1
                return None
            g, s = prev
        else:
            s = d.get("s")
            self._arrays[eid] = (g, s)
        ev = TrackletEvent(eid, str(d["cam"]), float(d["t0"]), float(d["t1"]), g, s, float(d["w"]), bool(d["fin"]))
        if ev.final:
            self._arrays.pop(eid, None)
        return ev

    def decode(self, data: bytes) -> tuple[list[TrackletEvent], list[TrackletEvent]]:
        """``(decide, update)`` events of one step, in the edge's order."""
        msg = unpack(data)
        decide = [e for e in (self._event(d) for d in msg.get("d", [])) if e is not None]
        update = [e for e in (self._event(d) for d in msg.get("u", [])) if e is not None]
        return decide, update

