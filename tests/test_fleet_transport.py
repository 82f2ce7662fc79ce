"""Fleet building blocks: wire codec, on-disk outbox, clock batching, Redis Streams transport."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from reid_edge.errors import FleetError
from reid_edge.fleet.batcher import Batcher, clock_key
from reid_edge.fleet.codec import pack, unpack
from reid_edge.fleet.outbox import Outbox
from reid_edge.fleet.redis_transport import connect, parse_redis_url
from reid_edge.fleet.transport import Entry, Outgoing, TransportUnavailable

from .fleet_support import RedisServer, free_port


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    pytest.importorskip("redis", reason="the fleet extra is not installed (pip install 'reid-edge[fleet]')")
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        pytest.skip(f"cannot start redis-server: {exc}")
    yield server
    server.stop()


def test_codec_round_trips_arrays_bit_exact() -> None:
    g = np.random.default_rng(0).normal(size=7)
    s = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    back = unpack(pack({"g": g, "s": s, "n": None, "x": [1, 2.5, "a"]}))
    assert back["g"].dtype == np.float64 and np.array_equal(back["g"], g)
    assert back["s"].dtype == np.float32 and back["s"].shape == (2, 3) and np.array_equal(back["s"], s)
    assert back["n"] is None and back["x"] == [1, 2.5, "a"]


def test_outbox_is_durable_ordered_and_bounded(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=1000)
    seqs = [box.put("step", i * 0.1, bytes([i]) * 100) for i in range(5)]
    assert seqs == sorted(seqs) and len(box) == 5 and box.session == 1
    assert [m.clock for m in box.peek(3)] == pytest.approx([0.0, 0.1, 0.2])
    box.remove_upto(seqs[1])
    assert [m.seq for m in box.peek(10)] == seqs[2:]
    box.close()
    # a new process (restart) sees what was left, a new session, and sequence numbers that go on
    box = Outbox(tmp_path / "o.sqlite", max_bytes=1000)
    assert box.session == 2 and [m.seq for m in box.peek(10)] == seqs[2:]
    assert box.put("step", 1.0, b"x") > seqs[-1]
    # past the byte bound the oldest rows go, counted, and the newest stays
    for i in range(20):
        box.put("step", 2.0 + i, b"y" * 100)
    assert box.bytes <= 1000 and box.dropped > 0 and box.peek(100)[-1].clock == 21.0
    box.close()


def test_outbox_put_never_waits_for_the_sender(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            rows = box.peek(50)
            if rows:
                box.remove_upto(rows[-1].seq)
        box.close()

    th = threading.Thread(target=drain)
    th.start()
    for i in range(300):
        box.put("step", float(i), b"z" * 200)
    stop.set()
    th.join()
    assert box.bytes >= 0


class _SlowTransport:
    """Publishes slowly; every decision is already there (the race at the end of a run)."""

    def __init__(self) -> None:
        self.published: list[Outgoing] = []

    def publish(self, edge: str, messages: list[Outgoing]) -> None:
        time.sleep(0.3)
        self.published.extend(messages)

    def read_decisions(self, edge: str, after: str, block_ms: int) -> list[tuple[str, bytes]]:
        if after == "0":
            return [("1-0", pack([["cam/1", 1, None]]))]
        time.sleep(0.05)
        return []

    def heartbeat(self, edge: str, ttl_ms: int) -> None:
        pass

    def close(self) -> None:
        pass


def test_edge_goodbye_leaves_before_the_edge_does(tmp_path: Path) -> None:
    from reid_edge.fleet.edge import EdgeConfig, EdgeLink, RemoteAssociator
    from reid_edge.pipeline.associate import TrackletEvent

    t = _SlowTransport()
    ra = RemoteAssociator(EdgeLink(t, EdgeConfig("e", ("cam",), tmp_path / "o.sqlite", publish_batch=1)))
    ra.start(0.5, 3)
    got = ra.decide([TrackletEvent("cam/1", "cam", 0.0, 1.0, np.ones(3), None, 1.0, True)])
    ra.end_step(1.0)
    got += ra.finish(1.0, 10.0)
    assert [d.global_id for d in got] == [1] and not ra.undecided()
    ra.close()
    assert [m.kind for m in t.published] == ["hello", "step", "bye"]  # the associator hears the goodbye


def test_edges_tell_the_associator_their_cards_gates(tmp_path: Path) -> None:
    """The hello carries the gate and the same-camera gate the edge would use alone; the central
    associator is built with them (unless its own configuration sets them)."""
    from reid_edge.fleet.central import Central
    from reid_edge.fleet.edge import EdgeConfig, EdgeLink, RemoteAssociator

    t = _SlowTransport()
    ra = RemoteAssociator(EdgeLink(t, EdgeConfig("e", ("cam",), tmp_path / "o.sqlite", publish_batch=1)))
    ra.start(0.5, 3, None, 1.0, 0.85)
    ra.end_step(1.0)
    ra.finish(1.0, 10.0)
    ra.close()
    hello = next(m for m in t.published if m.kind == "hello")
    made: list[tuple[object, ...]] = []

    def make(*args: object) -> object:
        made.append(args)
        return object()

    central = Central(None, make)  # type: ignore[arg-type]
    central._admit(Entry("1-0", "e", 1, "hello", 0.0, 1, hello.data))
    assert made == [(0.5, 3, "no-card", 1.0, 0.85)]


def _e(eid: str, edge: str, seq: int, clock: float, kind: str = "step", session: int = 1) -> Entry:
    return Entry(eid, edge, seq, kind, clock, session, b"")


def test_batcher_waits_for_every_edge_and_releases_in_clock_order() -> None:
    b = Batcher(("a", "b"))
    assert b.add(_e("1", "a", 1, 0.0, "hello")) == "state"
    assert b.add(_e("2", "a", 2, 0.1)) == "pending"
    assert b.add(_e("3", "a", 3, 0.2)) == "pending"
    assert b.ready() == []  # b has said nothing: its steps at 0.1 may still come
    assert b.add(_e("4", "b", 1, 0.1)) == "pending"
    got = b.ready()
    assert [(x.key, [e.entry_id for e in x.entries]) for x in got] == [(clock_key(0.1), ["2", "4"])]
    assert b.add(_e("4", "b", 1, 0.1)) == "dup"
    assert b.add(_e("5", "b", 1, 0.1)) == "dup"  # same seq re-sent under another entry id
    assert b.add(_e("6", "b", 2, 0.3, "mark")) == "state"
    assert [x.key for x in b.ready()] == [clock_key(0.2)]
    assert b.add(_e("7", "a", 4, 0.2, "bye")) == "state"
    assert b.add(_e("8", "b", 3, 0.5)) == "pending"
    assert [x.key for x in b.ready()] == [clock_key(0.5)]  # a is done: b alone gates


def test_batcher_restarted_edge_replay_is_late() -> None:
    b = Batcher()
    b.add(_e("1", "a", 1, 0.5))
    assert [x.key for x in b.ready()] == [clock_key(0.5)]
    assert b.add(_e("2", "a", 2, 0.0, "hello", session=2)) == "state"
    assert b.add(_e("3", "a", 3, 0.1, session=2)) == "late"
    late = b.ready()
    assert len(late) == 1 and late[0].late and [e.entry_id for e in late[0].entries] == ["3"]
    assert b.add(_e("4", "a", 4, 0.6, session=2)) == "pending"


def test_redis_url_errors_are_one_line(tmp_path: Path) -> None:
    assert parse_redis_url("redis://127.0.0.1:7000/3").port == 7000
    assert parse_redis_url("redis://127.0.0.1:7000/3").db == 3
    for bad in ("127.0.0.1:6379", "http://127.0.0.1:6379/0", "redis://127.0.0.1:port/0", "redis://127.0.0.1:1/x"):
        with pytest.raises(FleetError, match="is not a Redis URL"):
            parse_redis_url(bad, "--publish")
    pytest.importorskip("redis")
    with pytest.raises(FleetError, match="cannot reach the Redis server"):
        connect(f"redis://127.0.0.1:{free_port()}/0")


def test_redis_transport_group_pending_and_atomic_commit(redis_server: RedisServer) -> None:
    t = connect(redis_server.url, prefix="t1")
    t.ensure_group()
    t.ensure_group()  # idempotent
    t.publish("edge1", [Outgoing(i, "step", (i - 1) / 10, 1, pack({"i": i})) for i in (1, 2, 3)])
    got = t.read_new("c1", 10, 0)
    assert [(e.edge, e.seq, e.clock) for e in got] == [("edge1", 1, 0.0), ("edge1", 2, 0.1), ("edge1", 3, 0.2)]
    assert t.pending_count() == 3
    # a restarted associator (another consumer name) takes the unacknowledged entries over
    claimed = t.claim_pending("c2", 0)
    assert [e.seq for e in claimed] == [1, 2, 3]
    t.commit([pack({"k": 1})], {"edge1": pack([["cam/1", 7, None]])}, {"cam/1": pack([7, None])},
             [got[0].entry_id, got[1].entry_id])
    assert t.pending_count() == 1
    assert t.decided() == {"cam/1": pack([7, None])}
    assert [unpack(d) for _, d in t.read_decisions("edge1", "0", 0)] == [[["cam/1", 7, None]]]
    assert len(t.read_log("-", 100)) == 3 and len(t.read_log(got[0].entry_id, 100)) == 2
    assert [unpack(d) for _, d in t.read_batches("-", 10)] == [{"k": 1}]
    assert t.acquire_lock("me", 2000) and t.acquire_lock("me", 2000) and not t.acquire_lock("you", 2000)
    t.release_lock("me")
    assert t.acquire_lock("you", 2000)
    t.heartbeat("edge1", 2000)
    assert t.alive(["edge1", "edge2"]) == {"edge1": True, "edge2": False}
    t.close()


def test_transport_unavailable_when_the_server_goes(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    try:
        server = RedisServer(tmp_path / "r").start()
    except RuntimeError as exc:
        pytest.skip(f"cannot start redis-server: {exc}")
    t = connect(server.url, prefix="t2")
    server.kill()
    with pytest.raises(TransportUnavailable):
        t.publish("e", [Outgoing(1, "mark", 0.0, 1, b"")])
    server.start()  # same port: the client reconnects by itself on the next call
    t.publish("e", [Outgoing(1, "mark", 0.0, 1, b"")])
    assert len(t.read_log("-", 10)) == 1
    t.close()
    server.stop()
