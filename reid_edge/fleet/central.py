"""The central associator: every edge's tracklet events in, global-id decisions out.

It drives the very :class:`~reid_edge.pipeline.associate.Associator` that ``reid-edge run``
drives in one process. Steps are decided in the batches :mod:`.batcher` rebuilds by site clock,
updates first, then the step's new tracklets in camera order, which is what the single-process
pipeline does at each step.

Durability and recovery (at-least-once in, idempotent out):

- Every decided batch is committed in one atomic transaction: the batch's composition goes to
  the associator's own batch log, the decisions to each edge's decision stream and to the
  ``decided`` record, and the batch's entries are acknowledged (XACK). An entry is acknowledged
  only once the decision that used it is durable.
- A restarted associator rebuilds its state by replaying the batch log over the events log
  (same batches, same order, so the same decisions, checked against the ``decided`` record),
  takes over the group's pending entries (XAUTOCLAIM), and goes on. Entries delivered but never
  decided are decided then; nothing is decided twice differently and nothing is lost.
- One associator decides at a time (a lock key with a TTL); a second one waits.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FleetError
from ..pipeline.associate import Associator, Decision, TrackletEvent
from .batcher import Batch, Batcher
from .codec import pack, unpack
from .messages import DeltaDecoder
from .transport import CentralTransport, Entry, TransportUnavailable


@dataclass(frozen=True)
class CentralConfig:
    """Associator service settings."""

    edges: tuple[str, ...] = ()  # edges to wait for before deciding anything (others join when they say hello)
    camera_order: tuple[str, ...] = ()  # order of a step's new tracklets (default: camera names sorted)
    consumer: str = "associator"
    read_count: int = 2000
    block_ms: int = 100
    edge_timeout_s: float | None = 30.0  # a silent edge stops holding batches back after this long
    lock_ttl_ms: int = 5000
    exit_when_done: bool = False  # stop once every known edge said goodbye and all is decided
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0


@dataclass
class CentralStats:
    entries: int = 0
    events: int = 0  # tracklet events (decide + update) taken into batches
    decisions: int = 0
    batches: int = 0
    replayed_batches: int = 0
    replay_mismatches: int = 0  # replayed decisions that differ from the recorded ones (must stay 0)
    late_entries: int = 0
    reconnects: int = 0
    commit_seconds: float = 0.0
    decide_seconds: float = 0.0
    run_seconds: float = 0.0  # from the start of recovery to the end of the loop
    cpu_seconds: float = 0.0  # CPU time of this process over the same span (a shared machine's fair figure)
    excluded_edges: list[str] = field(default_factory=list)


@dataclass
class _Outgoing:
    batches: list[bytes] = field(default_factory=list)
    decisions: dict[str, list[list[Any]]] = field(default_factory=dict)
    decided: dict[str, bytes] = field(default_factory=dict)
    ack: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.batches or self.decisions or self.decided or self.ack)


class Central:
    """One associator process. Call :meth:`run` (it recovers first)."""

    def __init__(self, transport: CentralTransport,
                 make_associator: Callable[[float, int, str, float | None, float | None], Associator],
                 config: CentralConfig | None = None, log: Callable[[str], None] | None = None) -> None:
        """``make_associator(lambda_g, global_dim, model_key, max_distance, same_camera_gate)`` builds
        the association state once the first edge has said which model it embeds with and the gates
        it would use alone (every edge must use the same model)."""
        self.t = transport
        self.make_associator = make_associator
        self.assoc: Associator | None = None
        self.model: tuple[float, int, str, float | None, float | None] | None = None
        self._flushed = time.monotonic()
        self.config = config or CentralConfig()
        self.log = log or (lambda msg: None)
        self.batcher = Batcher(tuple(self.config.edges))
        self.decoder = DeltaDecoder()
        self.stats = CentralStats()
        self._events: dict[str, tuple[list[TrackletEvent], list[TrackletEvent]]] = {}
        self._rank = {c: i for i, c in enumerate(self.config.camera_order)}
        self._out = _Outgoing()
        self._token = uuid.uuid4().hex
        self._last_alive_check = 0.0
        self._excluded: set[str] = set()
        self._camera_owner: dict[str, str] = {}
        # ids of every tracklet some in-order step asked to decide: a restarted edge's replay of it
        # must not be decided out of order while the original still waits for its batch
        self._asked: set[str] = set()

    # -- entries and batches ------------------------------------------------------------------------
    def _admit(self, e: Entry) -> str:
        """Decode and file one events-log entry (in log order: the delta decoding needs it)."""
        if e.entry_id in self.batcher.seen:
            return "dup"
        self.stats.entries += 1
        if e.kind == "hello":
            hello = unpack(e.data)
            gate, same_cam = hello.get("max_distance"), hello.get("same_camera_gate")
            model = (float(hello.get("lambda_g", 0.5)), int(hello.get("global_dim", 1)), str(hello.get("model", "")),
                     None if gate is None else float(gate), None if same_cam is None else float(same_cam))
            if self.model is None:
                self.model = model
                self.assoc = self.make_associator(*model)
            elif model != self.model:
                self.log(f"warning: edge {e.edge!r} embeds with (lambda_g, dim, model, gate, same-camera gate) "
                         f"{model}, the fleet with "
                         f"{self.model}: its distances are not comparable (deploy one model to every edge)")
            for cam in hello.get("cameras", []):
                owner = self._camera_owner.setdefault(cam, e.edge)
                if owner != e.edge:
                    self.log(f"warning: camera {cam!r} announced by edge {e.edge!r} and by {owner!r}; "
                             "camera names must be unique across the site")
        state = self.batcher.add(e, time.monotonic())
        if e.kind == "step" and state != "dup":
            self._events[e.entry_id] = self.decoder.decode(e.data)
            if state == "pending":
                self._asked.update(ev.event_id for ev in self._events[e.entry_id][0])
        if state == "late":
            self.stats.late_entries += 1
        return state

    def _cam_rank(self, cam: str) -> tuple[int, str]:
        return (self._rank.get(cam, len(self._rank)), cam)

    def _process(self, batch: Batch) -> list[tuple[str, Decision]]:
        """Decide one batch: updates first, then new tracklets in camera order, as `run` does."""
        t0 = time.perf_counter()
        assoc = self._associator(batch)
        owner: dict[str, str] = {}
        decide: list[tuple[tuple[int, str], int, TrackletEvent]] = []
        n = 0
        for e in batch.entries:
            dec, upd = self._events.pop(e.entry_id, ([], []))
            n += len(dec) + len(upd)
            if not batch.late:
                for ev in upd:
                    assoc.update(ev)
            for ev in dec:
                if batch.late and (ev.event_id in self._asked or assoc.decision(ev.event_id) is not None):
                    continue  # a restarted edge's replay: decided (or to be) in order; the edge reads it back
                owner[ev.event_id] = e.edge
                decide.append((self._cam_rank(ev.camera), len(decide), ev))
        decide.sort(key=lambda x: (x[0], x[1]))
        decisions = assoc.decide([ev for _, _, ev in decide]) if decide else []
        self.stats.events += n
        self.stats.decisions += len(decisions)
        self.stats.batches += 1
        self.stats.decide_seconds += time.perf_counter() - t0
        return [(owner[d.event_id], d) for d in decisions]

    def _associator(self, batch: Batch) -> Associator:
        if self.assoc is None:  # steps before any hello: only a log that lost its start
            dim = next((len(ev.global_) for e in batch.entries for ev in self._events.get(e.entry_id, ([], []))[0]
                        if ev.global_ is not None), 1)
            self.log("warning: tracklet events before any edge said hello; assuming lambda_g 0.5")
            self.model = (0.5, dim, "", None, None)
            self.assoc = self.make_associator(*self.model)
        return self.assoc

    def _record(self, batch: Batch, decisions: list[tuple[str, Decision]]) -> None:
        out = self._out
        out.batches.append(pack({"k": batch.key, "late": batch.late, "e": [e.entry_id for e in batch.entries]}))
        for edge, d in decisions:
            out.decisions.setdefault(edge, []).append([d.event_id, d.global_id, d.distance])
            out.decided[d.event_id] = pack([d.global_id, d.distance])
        out.ack.extend(e.entry_id for e in batch.entries)

    def _commit(self) -> None:
        if self._out.empty():
            return
        t0 = time.perf_counter()
        out = self._out
        self._retry(lambda: self.t.commit(out.batches, {k: pack(v) for k, v in out.decisions.items()},
                                          out.decided, out.ack), "commit")
        self._out = _Outgoing()
        self.stats.commit_seconds += time.perf_counter() - t0

    def _retry(self, fn: Callable[[], Any], what: str) -> Any:
        delay = self.config.backoff_s
        while True:
            try:
                return fn()
            except TransportUnavailable as exc:
                self.stats.reconnects += 1
                self.log(f"broker unavailable during {what} ({exc}); retrying in {delay:.2f}s")
                time.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff_s)

    # -- recovery -----------------------------------------------------------------------------------
    def _lock(self, stop: threading.Event | None) -> None:
        waited = False
        while not self._retry(lambda: self.t.acquire_lock(self._token, self.config.lock_ttl_ms), "lock"):
            if not waited:
                self.log("another associator holds the lock; waiting for it to stop or expire")
                waited = True
            if stop is None:
                time.sleep(0.5)
            elif stop.wait(0.5):
                return

    def recover(self) -> None:
        """Rebuild the state from the events log and the batch log; take over pending entries."""
        self._retry(self.t.ensure_group, "start")
        after = "-"
        while True:
            chunk = self._retry(functools.partial(self.t.read_log, after, 5000), "recovery")
            if not chunk:
                break
            for e in chunk:
                self._admit(e)
            after = chunk[-1].entry_id
        record: dict[str, bytes] = self._retry(self.t.decided, "recovery")
        after = "-"
        while True:
            items = self._retry(functools.partial(self.t.read_batches, after, 5000), "recovery")
            if not items:
                break
            for _bid, data in items:
                b = unpack(data)
                batch = self.batcher.take(list(b["e"]), int(b["k"]), bool(b["late"]))
                for _edge, d in self._process(batch):
                    rec = record.get(d.event_id)
                    if rec is not None and unpack(rec) != [d.global_id, d.distance]:
                        self.stats.replay_mismatches += 1
                        self.log(f"warning: replayed decision for {d.event_id} differs from the recorded one")
                self.stats.replayed_batches += 1
            after = items[-1][0]
        self.stats.decisions = 0
        self.stats.batches = 0
        claimed = self._retry(lambda: self.t.claim_pending(self.config.consumer, 0), "recovery")
        pending_ids = {e.entry_id for es in self.batcher.pending.values() for e in es}
        pending_ids |= {e.entry_id for e in self.batcher.late}
        # claimed entries already decided (their batch is in the batch log) only need their ack
        self._out.ack.extend(e.entry_id for e in claimed if e.entry_id not in pending_ids)
        if self.stats.replayed_batches or claimed:
            self.log(f"recovered: {self.stats.replayed_batches} batches replayed, {len(claimed)} pending entries "
                     f"taken over, {self.batcher.waiting} entries waiting for their batch")

    # -- the loop -----------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        timeout = self.config.edge_timeout_s
        now = time.monotonic()
        if timeout is None or now - self._last_alive_check < 1.0:
            return
        self._last_alive_check = now
        gate = [s for s in self.batcher.gating() if s.last_seen > float("-inf")]
        if not gate:
            return
        alive = self._retry(lambda: self.t.alive([s.name for s in gate]), "heartbeat check")
        for s in gate:
            silent = not alive.get(s.name, False) and now - s.last_seen > timeout
            if silent and s.name not in self._excluded:
                self.log(f"edge {s.name!r} silent for {timeout:.0f}s: deciding without it until it is back")
                self._excluded.add(s.name)
                self.stats.excluded_edges.append(s.name)
            elif not silent and s.name in self._excluded:
                self.log(f"edge {s.name!r} is back")
                self._excluded.discard(s.name)

    def _all_done(self) -> bool:
        edges = self.batcher.edges.values()
        return bool(edges) and all(s.done for s in edges) and self.batcher.waiting == 0

    def step(self) -> int:
        """Read what is there (blocking up to ``block_ms``), decide complete batches, commit once.
        Returns the number of batches decided."""
        cfg = self.config
        if not self._retry(lambda: self.t.acquire_lock(self._token, cfg.lock_ttl_ms), "lock"):
            # another associator took over (this one stalled past the lock's TTL): two deciders
            # would give the same tracklet two ids, so this one stops
            raise FleetError("another associator holds the fleet's lock (this one stalled longer than "
                             f"{cfg.lock_ttl_ms} ms); stopping")
        entries = self._retry(lambda: self.t.read_new(cfg.consumer, cfg.read_count, cfg.block_ms), "read")
        for e in entries:
            state = self._admit(e)
            if state in ("dup", "state"):
                self._out.ack.append(e.entry_id)
        self._check_alive()
        batches = self.batcher.ready(self._excluded)
        for b in batches:
            self._record(b, self._process(b))
        self._commit()
        gallery = getattr(self.assoc, "gallery", None)
        if gallery is not None and time.monotonic() - self._flushed > 5.0:
            assert self.assoc is not None
            self.assoc.flush()  # appearance refinements; decided identities are saved as they are made
            self._flushed = time.monotonic()
        return len(batches)

    def run(self, stop: threading.Event | None = None) -> CentralStats:
        """Recover, then decide until ``stop`` is set (or, with ``exit_when_done``, all edges are done)."""
        self._lock(stop)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self.recover()
            self._commit()
            while stop is None or not stop.is_set():
                self.step()
                if self.config.exit_when_done and self._all_done():
                    break
        finally:
            try:
                self._commit()
                if self.assoc is not None and getattr(self.assoc, "gallery", None) is not None:
                    self.assoc.flush()
                self.t.release_lock(self._token)
            except TransportUnavailable:
                pass
            self.stats.run_seconds = time.perf_counter() - t0
            self.stats.cpu_seconds = time.process_time() - c0
        return self.stats


class _ResumedGallery:
    """A gallery whose known people come from the fleet's start snapshot, saved to the live file.

    The associator's state is rebuilt by replaying the batch log, so the people it starts from
    must be those it started from the first time, not the live file (which already holds this
    fleet's own identities).
    """

    def __init__(self, prior: Any, live: Any) -> None:
        self.prior, self.live = prior, live

    def load(self) -> Any:
        return self.prior.load()

    def next_gid(self) -> int:
        return int(self.prior.next_gid())

    def save(self, records: Any, next_gid: int) -> None:
        self.live.save(records, next_gid)

    def close(self) -> None:
        self.prior.close()
        self.live.close()


def open_fleet_gallery(path: str | Path, global_dim: int, model_key: str, fleet_id: str, prefix: str,
                       config: Any = None) -> Any:
    """Open ``--gallery`` for the associator of fleet ``fleet_id``.

    The first time a fleet (one events log) uses the gallery, a snapshot of it is kept beside it
    (``PATH.fleet-PREFIX-ID``); every later start of the same fleet (a restart after a crash)
    loads its known people from that snapshot, so that replaying the batch log rebuilds exactly
    the state the crashed associator had, and saves to the live file as usual.

    Raises:
        GalleryError: the file is not a gallery of this model (left as it is).
    """
    import sqlite3

    from ..pipeline.gallery import GalleryConfig, IdentityGallery

    cfg = config or GalleryConfig()
    live = IdentityGallery(path, global_dim, model_key, cfg)
    snap = Path(f"{path}.fleet-{prefix}-{fleet_id}")
    if not snap.exists():
        tmp = snap.with_name(snap.name + ".tmp")
        dst = sqlite3.connect(str(tmp))
        try:
            live.conn.backup(dst)
        finally:
            dst.close()
        tmp.replace(snap)
    # eviction needs no limits on the snapshot: it must load as it was written
    prior = IdentityGallery(snap, global_dim, model_key, GalleryConfig(max_age_s=1e12, max_identities=10**12))
    return _ResumedGallery(prior, live)
