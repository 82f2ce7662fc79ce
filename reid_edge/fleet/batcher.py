"""Deterministic batching of the edges' steps by site clock (pure; no broker, no threads).

The single-process ``run`` decides, at each step of the site clock, every tracklet that became
ready at that step, together. Which tracklets are decided together changes the decisions (the
Hungarian assignment and the new-identity rule see them side by side), so the associator must
rebuild exactly those groups, whatever order the edges' messages arrive in. Each edge sends
one entry per step of its own clock (plus empty watermark entries now and then); entries of
one edge arrive in order, so an entry at clock ``c`` means that edge has said everything up to
``c``. The batch of clock ``c`` is complete once every gating edge's watermark has reached
``c`` (or the edge has said goodbye), and batches are released in clock order.

An edge that restarts (a new *session*) and replays its footage sends steps again from the
beginning of its clock. Steps at or below its watermark were already seen: they are *late*
and go into their own batch, where only tracklets the associator has never decided are decided
(an edge that replays deterministically has none; see the README's fleet section).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .transport import Entry

CLOCK_UNITS = 1_000_000  # batch keys are integer microseconds of site clock


def clock_key(clock: float) -> int:
    return int(round(clock * CLOCK_UNITS))


@dataclass
class EdgeState:
    """What the associator knows of one edge."""

    name: str
    session: int = 0
    watermark: int = -(2**62)  # clock key up to which the edge has sent everything
    last_seq: int = 0
    done: bool = False
    cameras: tuple[str, ...] = ()
    last_seen: float = -math.inf  # wall time of its last entry (monotonic seconds)


@dataclass
class Batch:
    """Entries decided together: every entry with content at one clock key (or late ones)."""

    key: int
    entries: list[Entry] = field(default_factory=list)
    late: bool = False


class Batcher:
    """Collects entries and releases complete batches in site-clock order."""

    def __init__(self, expected_edges: tuple[str, ...] = ()) -> None:
        self.edges: dict[str, EdgeState] = {e: EdgeState(e) for e in expected_edges}
        self.pending: dict[int, list[Entry]] = {}
        self.late: list[Entry] = []
        self.seen: set[str] = set()
        self.frontier = -(2**62)  # key of the last released batch
        self.warnings: list[str] = []

    def edge(self, name: str) -> EdgeState:
        st = self.edges.get(name)
        if st is None:
            st = self.edges[name] = EdgeState(name)
        return st

    def add(self, entry: Entry, now: float = 0.0) -> str:
        """Take one entry. Returns what became of it: ``dup``, ``state`` (hello, bye or a
        watermark-only ``mark``: done with), ``pending`` (waits for its batch) or ``late``."""
        if entry.entry_id in self.seen:
            return "dup"
        st = self.edge(entry.edge)
        if entry.seq <= st.last_seq:  # re-sent after an edge crash between publish and outbox delete
            self.seen.add(entry.entry_id)
            return "dup"
        self.seen.add(entry.entry_id)
        st.last_seq = entry.seq
        st.last_seen = now
        key = clock_key(entry.clock)
        if entry.kind == "hello":
            st.session, st.done = entry.session, False
            return "state"
        if entry.kind == "bye":
            st.done = True
            st.watermark = max(st.watermark, key)
            return "state"
        replay = key <= st.watermark
        st.watermark = max(st.watermark, key)
        if entry.kind != "step":
            return "state"
        if replay or key <= self.frontier:
            self.late.append(entry)
            return "late"
        self.pending.setdefault(key, []).append(entry)
        return "pending"

    def gating(self, excluded: set[str] | None = None) -> list[EdgeState]:
        """Edges whose watermark holds batches back: known, not finished, not excluded."""
        skip = excluded or set()
        return [s for s in self.edges.values() if not s.done and s.name not in skip]

    def ready(self, excluded: set[str] | None = None) -> list[Batch]:
        """Release every complete batch, late entries first, then in clock order."""
        out: list[Batch] = []
        if self.late:
            out.append(Batch(self.frontier, sorted(self.late, key=_order), late=True))
            self.late = []
        gate = self.gating(excluded)
        limit = min((s.watermark for s in gate), default=None)
        for key in sorted(self.pending):
            if limit is not None and key > limit:
                break
            out.append(Batch(key, sorted(self.pending.pop(key), key=_order)))
            self.frontier = max(self.frontier, key)
        return out

    def take(self, entry_ids: list[str], key: int, late: bool) -> Batch:
        """Remove the given entries wherever they wait (replaying the batch log)."""
        want = set(entry_ids)
        found: dict[str, Entry] = {}
        for e in self.late:
            if e.entry_id in want:
                found[e.entry_id] = e
        self.late = [e for e in self.late if e.entry_id not in want]
        for k in list(self.pending):
            keep = []
            for e in self.pending[k]:
                if e.entry_id in want:
                    found[e.entry_id] = e
                else:
                    keep.append(e)
            if keep:
                self.pending[k] = keep
            else:
                del self.pending[k]
        if not late:
            self.frontier = max(self.frontier, key)
        return Batch(key, [found[i] for i in entry_ids if i in found], late)

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self.pending.values()) + len(self.late)


def _order(e: Entry) -> tuple[str, int]:
    return (e.edge, e.seq)
