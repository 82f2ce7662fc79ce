"""The edge side: the pipeline's associator replaced by a link to the central one.

:class:`RemoteAssociator` has the :class:`~reid_edge.pipeline.associate.Associator` methods the
pipeline calls (``update``, ``decide``) plus ``end_step`` / ``poll`` / ``finish``: the events of
each step are appended to the on-disk :class:`~.outbox.Outbox` as one message, and decisions
come back later through :meth:`RemoteAssociator.poll`. Nothing here waits for the network on
the video loop's thread: a publisher thread drains the outbox and a receiver thread reads the
edge's decision stream, each reconnecting with exponential backoff.

Event ids: the pipeline names a tracklet ``<camera>/<track id>``. For file sources (replayable)
the fleet keeps that name, so an edge restarted on the same footage re-creates the same
tracklets under the same ids and gets their recorded decisions back; for live sources the ids
are prefixed with the outbox's session number (``s3/<camera>/<track id>``), since a restarted
live edge starts new tracklets whose track ids repeat.

Time base: the associator compares times across boxes (batches by site clock, same-camera
overlaps, layout travel times). File sources keep the footage's clock, the same on every box
that replays the site's recordings. Live sources put their times on the wall clock (Unix
seconds at the session's start plus the camera clock), so boxes must keep their clocks in
sync (NTP) and a restarted live edge continues on the same time line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pipeline.associate import Decision, Interval, TrackletEvent
from .codec import pack, unpack
from .messages import DeltaEncoder
from .outbox import Outbox
from .transport import EdgeTransport, TransportUnavailable


@dataclass(frozen=True)
class EdgeConfig:
    """Edge link settings."""

    edge_id: str
    cameras: tuple[str, ...]
    outbox_path: Path
    max_buffer_bytes: int = 256 * 2**20
    replayable: bool = True  # file sources: event ids without a session prefix (see module docstring)
    mark_every_s: float = 0.2  # site seconds between watermark-only messages when nothing happens
    heartbeat_ms: int = 1000
    publish_batch: int = 500
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0


@dataclass
class EdgeStats:
    published: int = 0
    decisions: int = 0
    reconnects: int = 0
    last_error: str = ""


class EdgeLink:
    """Background publisher and receiver around an :class:`Outbox` and an :class:`EdgeTransport`."""

    def __init__(self, transport: EdgeTransport, config: EdgeConfig,
                 log: Callable[[str], None] | None = None) -> None:
        self.t = transport
        self.config = config
        self.log = log or (lambda msg: None)
        self.outbox = Outbox(config.outbox_path, config.max_buffer_bytes)
        self.stats = EdgeStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._decided: dict[str, Decision] = {}
        self.arrived_at: dict[str, float] = {}  # event id -> time.monotonic() its decision arrived (latency)
        self._new: list[Decision] = []
        self._arrived = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._down = False

    @property
    def session(self) -> int:
        return self.outbox.session

    def start(self, **meta: object) -> None:
        """Say hello (cameras, session and ``meta``: the model's lambda_g and global_dim), start the threads."""
        self.put("hello", 0.0, pack({"cameras": list(self.config.cameras), "session": self.session, **meta}))
        for target, name in ((self._publisher, "publisher"), (self._receiver, "receiver")):
            th = threading.Thread(target=target, name=f"fleet-{name}", daemon=True)
            th.start()
            self._threads.append(th)

    def put(self, kind: str, clock: float, data: bytes) -> int:
        seq = self.outbox.put(kind, clock, data)
        self._wake.set()
        return seq

    # -- threads ------------------------------------------------------------------------------------
    def _backoff(self, delay: float, exc: Exception) -> float:
        with self._lock:
            self.stats.reconnects += 1
            self.stats.last_error = str(exc)
        if not self._down:
            self.log(f"broker unavailable ({exc}); buffering on disk and retrying with backoff")
            self._down = True
        self._stop.wait(delay)
        return min(delay * 2, self.config.max_backoff_s)

    def _publisher(self) -> None:
        delay = self.config.backoff_s
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_beat:
                    self.t.heartbeat(self.config.edge_id, 3 * self.config.heartbeat_ms)
                    next_beat = now + self.config.heartbeat_ms / 1000
                rows = self.outbox.peek(self.config.publish_batch)
                if rows:
                    self.t.publish(self.config.edge_id, rows)
                    self.outbox.remove_upto(rows[-1].seq)
                    with self._lock:
                        self.stats.published += len(rows)
            except TransportUnavailable as exc:
                delay = self._backoff(delay, exc)
                continue
            if self._down:
                self.log("broker reachable again")
                self._down = False
            delay = self.config.backoff_s
            if not rows:
                self._wake.wait(0.1)
                self._wake.clear()

    def _receiver(self) -> None:
        delay = self.config.backoff_s
        cursor = "0"  # from the start: a restarted edge needs its earlier decisions too
        while not self._stop.is_set():
            try:
                items = self.t.read_decisions(self.config.edge_id, cursor, block_ms=200)
                delay = self.config.backoff_s
            except TransportUnavailable as exc:
                delay = self._backoff(delay, exc)
                continue
            if not items:
                continue
            got = []
            for entry_id, data in items:
                cursor = entry_id
                for eid, gid, dist in unpack(data):
                    got.append(Decision(str(eid), int(gid), None if dist is None else float(dist)))
            now = time.monotonic()
            with self._arrived:
                for d in got:
                    if d.event_id not in self._decided:
                        self._decided[d.event_id] = d
                        self.arrived_at[d.event_id] = now
                        self._new.append(d)
                self.stats.decisions = len(self._decided)
                self._arrived.notify_all()

    # -- the pipeline's side ----------------------------------------------------------------------
    def take_new(self) -> list[Decision]:
        with self._lock:
            out, self._new = self._new, []
        return out

    def known(self, event_id: str) -> Decision | None:
        with self._lock:
            return self._decided.get(event_id)

    def wait_for(self, event_ids: set[str], timeout_s: float) -> bool:
        """Block until every id is decided (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not event_ids.issubset(self._decided):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(min(left, 0.5))
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while len(self.outbox):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop both threads; what is still in the outbox stays on disk for the next start."""
        self._stop.set()
        self._wake.set()
        for th in self._threads:
            th.join(timeout=5.0)
        self.outbox.close()
        self.t.close()


class RemoteAssociator:
    """What the pipeline sees on an edge box: the Associator's calls, answered by the fleet."""

    def __init__(self, link: EdgeLink) -> None:
        self.link = link
        self.encoder = DeltaEncoder()
        self.prefix = "" if link.config.replayable else f"s{link.session}/"
        # live sources: times go on the wall clock (see the module docstring); footage keeps its own
        self.offset = 0.0 if link.config.replayable else time.time()
        self._decide: list[TrackletEvent] = []
        self._update: list[TrackletEvent] = []
        self._last_mark = float("-inf")
        self._last_clock = float("-inf")
        self._seen: dict[str, Interval] = {}  # local id -> where and when (summary)
        self._undecided: set[str] = set()
        self._decisions: dict[str, Decision] = {}  # local id -> decision
        self.steps = 0

    def _wire(self, ev: TrackletEvent) -> TrackletEvent:
        self._seen[ev.event_id] = Interval(ev.camera, ev.start_s, ev.end_s)
        if not self.prefix:
            return ev
        return TrackletEvent(self.prefix + ev.event_id, ev.camera, ev.start_s + self.offset, ev.end_s + self.offset,
                             ev.global_, ev.stripes, ev.weight, ev.final)

    def _local(self, d: Decision) -> Decision | None:
        if not d.event_id.startswith(self.prefix):
            return None
        return Decision(d.event_id[len(self.prefix):], d.global_id, d.distance)

    def start(self, lambda_g: float, global_dim: int, card: Any = None, max_distance: float | None = None,
              same_camera_gate: float | None = None) -> None:
        """Called by the pipeline once it knows the model: hello (the model and the gates it would
        use alone), then the link's threads run."""
        from ..pipeline.gallery import model_key

        self.link.start(lambda_g=lambda_g, global_dim=global_dim, model=model_key(card), max_distance=max_distance,
                        same_camera_gate=same_camera_gate)

    # the Associator's interface, as the pipeline uses it
    def update(self, event: TrackletEvent) -> None:
        self._update.append(self._wire(event))

    def decide(self, events: list[TrackletEvent]) -> list[Decision]:
        """Queue for the central associator; returns the decisions already known (a replay)."""
        out = []
        for ev in events:
            self._undecided.add(ev.event_id)
            self._decide.append(self._wire(ev))
            known = self.link.known(self.prefix + ev.event_id)
            if known is not None:
                d = Decision(ev.event_id, known.global_id, known.distance)
                self._decisions[ev.event_id] = d
                self._undecided.discard(ev.event_id)
                out.append(d)
        return out

    def decision(self, event_id: str) -> Decision | None:
        return self._decisions.get(event_id)

    @property
    def identities(self) -> dict[int, list[Interval]]:
        """This edge's cameras' tracklets per global id (the whole site's are at the associator)."""
        out: dict[int, list[Interval]] = {}
        for eid, d in self._decisions.items():
            iv = self._seen.get(eid)
            if iv is not None:
                out.setdefault(d.global_id, []).append(iv)
        return out

    # the fleet's additions
    def end_step(self, clock: float) -> None:
        """Close the step at site clock ``clock``: one outbox message (or a watermark now and then)."""
        self.steps += 1
        clock += self.offset
        if (self._decide or self._update) and clock <= self._last_clock:
            clock = self._last_clock + 1e-6  # the run's final round after its last step: one clock unit on
        if self._decide or self._update:
            self.link.put("step", clock, self.encoder.encode(self._decide, self._update))
            self._decide, self._update = [], []
            self._last_mark = self._last_clock = clock
        elif clock - self._last_mark >= self.link.config.mark_every_s and clock > self._last_clock:
            self.link.put("mark", clock, b"")
            self._last_mark = self._last_clock = clock

    def poll(self) -> list[Decision]:
        """Decisions that arrived since the last call (for tracklets of this run)."""
        out = []
        for d in self.link.take_new():
            loc = self._local(d)
            if loc is not None and loc.event_id in self._undecided:
                self._decisions[loc.event_id] = loc
                self._undecided.discard(loc.event_id)
                out.append(loc)
        return out

    def undecided(self) -> set[str]:
        return set(self._undecided)

    def finish(self, clock: float, timeout_s: float) -> list[Decision]:
        """Say goodbye (clock ``clock``) and wait up to ``timeout_s`` for the missing decisions."""
        self.end_step(clock)
        self.link.put("bye", max(clock + self.offset, self._last_clock), b"")
        deadline = time.monotonic() + timeout_s
        self.link.wait_for({self.prefix + e for e in self.undecided()}, timeout_s)
        # the last decisions can arrive before the goodbye has left the outbox: without it the
        # associator would keep waiting for this edge, so let it go out too (what cannot, stays
        # on disk for the next start)
        self.link.drain(max(deadline - time.monotonic(), min(timeout_s, 5.0)))
        return self.poll()

    def stats(self) -> dict[str, object]:
        """The edge's fleet figures for summary.json."""
        link = self.link
        return {"edge_id": link.config.edge_id, "session": link.session, "messages_published": link.stats.published,
                "outbox_left": len(link.outbox), "outbox_dropped": link.outbox.dropped,
                "reconnects": link.stats.reconnects, "decisions": len(self._decisions),
                "undecided_tracklets": len(self.undecided())}

    def close(self) -> None:
        self.link.close()


def open_edge(url: str, edge_id: str, outbox_path: str | Path, max_buffer_mb: float = 256.0,
              log: Callable[[str], None] | None = None) -> Callable[[list[Any]], RemoteAssociator]:
    """Check the broker now (a bad URL or an unreachable server is a one-line error before any
    video is opened) and return the factory :func:`~reid_edge.pipeline.runner.run_pipeline` calls
    with the opened cameras.

    Raises:
        FleetError: bad URL, missing client, unreachable server.
    """
    from .redis_transport import connect

    transport = connect(url, "--publish")

    def make(sources: list[Any]) -> RemoteAssociator:
        replayable = all(getattr(src, "kind", "") in ("file", "folder") for src in sources)
        cfg = EdgeConfig(edge_id, tuple(src.name for src in sources), Path(outbox_path),
                         int(max_buffer_mb * 2**20), replayable=replayable)
        return RemoteAssociator(EdgeLink(transport, cfg, log))

    return make
