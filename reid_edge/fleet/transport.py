"""The fleet's transport interface: what the edge boxes and the associator need from a broker.

Two small protocols, one per side, so that a broker other than Redis (Kafka, for a site that
already runs DeepStream) is one more class, not a rewrite. Everything above them (the edge's
outbox, the associator's batching and recovery) is broker-neutral.

Redis Streams -> Kafka mapping (for whoever adds a Kafka transport):

==============================  ==============================================================
Redis (``RedisTransport``)      Kafka
==============================  ==============================================================
stream ``P:events``             topic ``P.events``, keyed by edge id (one partition per edge
                                keeps an edge's steps in order, which is all the associator
                                needs; entry ids become ``partition:offset``)
consumer group ``associators``  consumer group ``associators``
XREADGROUP ``>``                ``poll()``
XACK after the decision         offset commit after the decision; do it in the producer
                                transaction that writes the decisions
                                (``send_offsets_to_transaction``), the analogue of MULTI/EXEC
pending entries (PEL),          uncommitted offsets, re-delivered to the group after a
XPENDING / XAUTOCLAIM           restart or rebalance
XRANGE of ``P:events``          a second consumer without a group, ``seek_to_beginning``
                                (topic retention must keep what the batch log refers to)
stream ``P:batches``            topic ``P.batches`` (one partition): the associator's own log
stream ``P:decisions:EDGE``     topic ``P.decisions`` keyed by edge id; an edge reads its key
                                from the beginning (or a compacted topic keyed by event id)
hash ``P:decided``              compacted topic ``P.decided`` keyed by event id
key ``P:alive:EDGE`` with TTL   the edge's heartbeat entries (no TTL keys in Kafka)
==============================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class TransportUnavailable(Exception):
    """The broker cannot be reached right now (the caller backs off and retries)."""


@dataclass(frozen=True)
class Outgoing:
    """One edge step as the edge publishes it (an outbox row)."""

    seq: int  # per edge, increasing across restarts (the outbox's row id)
    kind: str  # hello | step (events) | mark (watermark only) | bye
    clock: float  # site clock of the step, seconds (the edge's cameras' clock)
    session: int  # the edge process's start count (the outbox keeps it across restarts)
    data: bytes  # codec payload


@dataclass(frozen=True)
class Entry:
    """One entry of the events log as the associator reads it."""

    entry_id: str  # the broker's position (Redis stream id)
    edge: str
    seq: int
    kind: str
    clock: float
    session: int
    data: bytes


class EdgeTransport(Protocol):
    """What an edge box needs: append its steps in order, read its decisions back."""

    def publish(self, edge: str, messages: list[Outgoing]) -> None:
        """Append ``messages`` to the events log, in order. Raises TransportUnavailable."""
        ...

    def read_decisions(self, edge: str, after: str, block_ms: int) -> list[tuple[str, bytes]]:
        """Decision batches for ``edge`` after position ``after`` ("0": from the start)."""
        ...

    def heartbeat(self, edge: str, ttl_ms: int) -> None:
        """Say that ``edge`` is alive for the next ``ttl_ms``."""
        ...

    def close(self) -> None: ...


class CentralTransport(Protocol):
    """What the associator needs: a consumer group over the events log and an atomic commit."""

    def ensure_group(self) -> None:
        """Create the consumer group (and the log) when missing."""
        ...

    def acquire_lock(self, token: str, ttl_ms: int) -> bool:
        """Take or keep the one-deciding-associator lock; False while another holds it."""
        ...

    def release_lock(self, token: str) -> None: ...

    def decided(self) -> dict[str, bytes]:
        """The idempotency record: event id -> decision."""
        ...

    def fleet_id(self) -> str:
        """A name for this fleet's log, made once when the log starts (a new log, a new name)."""
        ...

    def read_log(self, after: str, count: int) -> list[Entry]:
        """Events log entries after position ``after`` ("-": from the start), any delivery state."""
        ...

    def read_batches(self, after: str, count: int) -> list[tuple[str, bytes]]:
        """The associator's own batch log after ``after``."""
        ...

    def claim_pending(self, consumer: str, min_idle_ms: int) -> list[Entry]:
        """Take over every pending (delivered, unacknowledged) entry idle at least ``min_idle_ms``."""
        ...

    def read_new(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """Entries never delivered to the group."""
        ...

    def commit(self, batches: list[bytes], decisions: dict[str, bytes], decided: dict[str, bytes],
               ack: list[str]) -> None:
        """Atomically: append ``batches`` to the batch log, each edge's decisions to its decision
        log, record ``decided`` (event id -> decision) and acknowledge ``ack`` entries."""
        ...

    def alive(self, edges: list[str]) -> dict[str, bool]:
        """Which edges have a live heartbeat."""
        ...

    def pending_count(self) -> int: ...

    def close(self) -> None: ...
