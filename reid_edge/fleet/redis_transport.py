"""Redis Streams implementation of both transport protocols (client: ``redis`` on PyPI).

Keys, all under one prefix ``P`` (default ``reid``):

- ``P:events`` (stream): every edge step, fields ``edge seq kind clock session data``; consumer
  group ``associators``.
- ``P:batches`` (stream): the associator's own log, one entry per decided batch.
- ``P:decisions:EDGE`` (stream): decision batches for one edge.
- ``P:decided`` (hash): event id -> decision, the idempotency record.
- ``P:alive:EDGE`` (string with a TTL): an edge's heartbeat.
- ``P:lock`` (string with a TTL): held by the one associator that decides.

Connection problems during a run raise :class:`TransportUnavailable` (callers back off and
retry); a bad URL or a server that cannot be reached at start-up is a :class:`FleetError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import FleetError
from .transport import Entry, Outgoing, TransportUnavailable

GROUP = "associators"
DEFAULT_PREFIX = "reid"


@dataclass(frozen=True)
class RedisURL:
    """A parsed ``redis://[:password@]HOST:PORT/DB`` (``rediss://`` for TLS)."""

    host: str
    port: int
    db: int
    password: str | None = None
    ssl: bool = False

    def __str__(self) -> str:
        return f"{'rediss' if self.ssl else 'redis'}://{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str, flag: str = "--redis") -> RedisURL:
    """Parse and check a Redis URL.

    Raises:
        FleetError: not ``redis://`` / ``rediss://``, no host, or a port/db that is not a number.
    """
    expected = f"{flag} {url!r} is not a Redis URL (expected redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FleetError(expected) from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise FleetError(expected)
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise FleetError(expected)
    return RedisURL(parts.hostname, port or 6379, int(path or 0),
                    unquote(parts.password) if parts.password else None, parts.scheme == "rediss")


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise FleetError("the fleet needs the Redis client: pip install 'reid-edge[fleet]'") from None
    return redis


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entry(entry_id: Any, fields: dict[bytes, bytes]) -> Entry:
    return Entry(_text(entry_id), _text(fields[b"edge"]), int(fields[b"seq"]), _text(fields[b"kind"]),
                 float(fields[b"clock"]), int(fields[b"session"]), bytes(fields[b"data"]))


class RedisTransport:
    """Both sides of the fleet over one Redis server (implements EdgeTransport and CentralTransport)."""

    def __init__(self, url: RedisURL, prefix: str = DEFAULT_PREFIX, timeout_s: float = 5.0) -> None:
        redis = _redis_module()
        self.url = url
        self.prefix = prefix
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._response_error = redis.exceptions.ResponseError
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # socket timeout above the longest BLOCK we issue (1 s), so a blocking read never trips it;
        # one immediate retry (a dropped idle connection), the backoff is ours (callers retry)
        self.client = redis.Redis(host=url.host, port=url.port, db=url.db, password=url.password, ssl=url.ssl,
                                  socket_connect_timeout=timeout_s, socket_timeout=timeout_s + 2.0,
                                  health_check_interval=0, retry=Retry(NoBackoff(), 1))
        self.events_key = f"{prefix}:events"
        self.batches_key = f"{prefix}:batches"
        self.decided_key = f"{prefix}:decided"
        self.lock_key = f"{prefix}:lock"

    # -- start-up ---------------------------------------------------------------------------------
    def check(self, flag: str = "--redis") -> None:
        """Ping the server once; a clear one-line error when it cannot be used.

        Raises:
            FleetError: unreachable, wrong password, or a server older than 6.2 (no XAUTOCLAIM).
        """
        redis = _redis_module()
        try:
            self.client.ping()
            version = str(self.client.info("server").get("redis_version", "0"))
        except redis.exceptions.AuthenticationError as exc:
            raise FleetError(f"{flag} {self.url}: authentication failed ({exc})") from None
        except self._errors as exc:
            raise FleetError(f"{flag} {self.url}: cannot reach the Redis server ({_reason(exc)})") from None
        except redis.exceptions.RedisError as exc:
            raise FleetError(f"{flag} {self.url}: {exc}") from None
        major, minor = (int(x) for x in (version.split(".") + ["0"])[:2])
        if (major, minor) < (6, 2):
            raise FleetError(f"{flag} {self.url}: Redis {version} is too old (the fleet needs 6.2+ for XAUTOCLAIM)")

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except self._errors as exc:
            raise TransportUnavailable(_reason(exc)) from exc
        except self._response_error as exc:
            if "LOADING" in str(exc):  # a restarted server replaying its AOF
                raise TransportUnavailable(str(exc)) from exc
            raise

    # -- edge side --------------------------------------------------------------------------------
    def publish(self, edge: str, messages: list[Outgoing]) -> None:
        if not messages:
            return
        pipe = self.client.pipeline(transaction=False)
        for m in messages:
            pipe.xadd(self.events_key, {"edge": edge, "seq": m.seq, "kind": m.kind, "clock": repr(m.clock),
                                        "session": m.session, "data": m.data})
        self._call(pipe.execute)

    def read_decisions(self, edge: str, after: str, block_ms: int) -> list[tuple[str, bytes]]:
        res = self._call(self.client.xread, {self.decisions_key(edge): after}, count=512,
                         block=block_ms if block_ms > 0 else None)
        out: list[tuple[str, bytes]] = []
        for _key, items in res or []:
            for entry_id, fields in items:
                out.append((_text(entry_id), bytes(fields[b"data"])))
        return out

    def heartbeat(self, edge: str, ttl_ms: int) -> None:
        self._call(self.client.set, f"{self.prefix}:alive:{edge}", b"1", px=ttl_ms)

    def decisions_key(self, edge: str) -> str:
        return f"{self.prefix}:decisions:{edge}"

    # -- central side -----------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self._call(self.client.xgroup_create, self.events_key, GROUP, id="0", mkstream=True)
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def acquire_lock(self, token: str, ttl_ms: int) -> bool:
        """Take (or keep) the single-associator lock; False when another associator holds it."""
        ok = self._call(self.client.set, self.lock_key, token, nx=True, px=ttl_ms)
        if ok:
            return True
        held = self._call(self.client.get, self.lock_key)
        if held is not None and _text(held) == token:
            self._call(self.client.pexpire, self.lock_key, ttl_ms)
            return True
        return False

    def release_lock(self, token: str) -> None:
        held = self._call(self.client.get, self.lock_key)
        if held is not None and _text(held) == token:
            self._call(self.client.delete, self.lock_key)

    def read_log(self, after: str, count: int) -> list[Entry]:
        lo = "-" if after in ("-", "0", "0-0") else f"({after}"
        items = self._call(self.client.xrange, self.events_key, min=lo, max="+", count=count)
        return [_entry(i, f) for i, f in items]

    def read_batches(self, after: str, count: int) -> list[tuple[str, bytes]]:
        lo = "-" if after in ("-", "0", "0-0") else f"({after}"
        items = self._call(self.client.xrange, self.batches_key, min=lo, max="+", count=count)
        return [(_text(i), bytes(f[b"data"])) for i, f in items]

    def claim_pending(self, consumer: str, min_idle_ms: int) -> list[Entry]:
        out: list[Entry] = []
        start = "0-0"
        while True:
            res = self._call(self.client.xautoclaim, self.events_key, GROUP, consumer, min_idle_ms,
                             start_id=start, count=1000)
            nxt, items = res[0], res[1]
            out.extend(_entry(i, f) for i, f in items if f)  # deleted entries come back empty
            start = _text(nxt)
            if start == "0-0":
                return out

    def read_new(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        try:
            res = self._call(self.client.xreadgroup, GROUP, consumer, {self.events_key: ">"}, count=count,
                             block=block_ms if block_ms > 0 else None)
        except self._response_error as exc:
            if "NOGROUP" in str(exc):  # a server restarted without persistence: start the group again
                self.ensure_group()
                return []
            raise
        return [_entry(i, f) for _k, items in res or [] for i, f in items]

    def commit(self, batches: list[bytes], decisions: dict[str, bytes], decided: dict[str, bytes],
               ack: list[str]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for b in batches:
            pipe.xadd(self.batches_key, {"data": b})
        for edge, data in decisions.items():
            pipe.xadd(self.decisions_key(edge), {"data": data})
        if decided:
            pipe.hset(self.decided_key, mapping=decided)
        if ack:
            pipe.xack(self.events_key, GROUP, *ack)
        self._call(pipe.execute)

    def decided(self) -> dict[str, bytes]:
        """The whole idempotency record (event id -> decision)."""
        raw = self._call(self.client.hgetall, self.decided_key)
        return {_text(k): bytes(v) for k, v in raw.items()}

    def fleet_id(self) -> str:
        import uuid

        self._call(self.client.set, f"{self.prefix}:fleet", uuid.uuid4().hex[:12], nx=True)
        return _text(self._call(self.client.get, f"{self.prefix}:fleet"))

    def alive(self, edges: list[str]) -> dict[str, bool]:
        if not edges:
            return {}
        vals = self._call(self.client.mget, [f"{self.prefix}:alive:{e}" for e in edges])
        return {e: v is not None for e, v in zip(edges, vals)}

    def pending_count(self) -> int:
        info = self._call(self.client.xpending, self.events_key, GROUP)
        return int(info["pending"] if isinstance(info, dict) else info[0])

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection has nothing to report
            pass


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


def connect(url: str, flag: str = "--redis", prefix: str = DEFAULT_PREFIX) -> RedisTransport:
    """Parse ``url``, connect and check the server once.

    Raises:
        FleetError: bad URL, missing client library, unreachable or unusable server.
    """
    parsed = parse_redis_url(url, flag)
    t = RedisTransport(parsed, prefix)
    try:
        t.check(flag)
    except BaseException:
        t.close()
        raise
    return t
