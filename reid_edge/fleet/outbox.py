"""The edge's bounded on-disk outbox (SQLite, WAL): the video loop appends, a sender drains.

Appending is one small local transaction, so the video loop never waits for the network; a
sender thread publishes the oldest rows and deletes them once the broker has them. The file
survives a crash or kill -9: a restarted edge first delivers what its previous run left.
Row ids never repeat (AUTOINCREMENT), so they are the edge's message sequence numbers across
restarts, and a ``session`` counter kept in the same file tells the runs apart.

When the broker stays away long enough for the file to pass ``max_bytes``, the oldest rows are
dropped (counted in :attr:`Outbox.dropped`): bounded memory and disk beat an edge box that
fills its disk. Their tracklets then never get a global id (their rows are not written).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ..io import sqlite_write_transaction
from .transport import Outgoing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    clock REAL NOT NULL, session INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    """A durable FIFO of :class:`Outgoing` messages, bounded in bytes.

    :meth:`put` is for the producing thread, :meth:`peek` / :meth:`remove_upto` for the sender;
    each thread gets its own SQLite connection.
    """

    def __init__(self, path: str | Path, max_bytes: int = 256 * 2**20) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.dropped = 0
        con = self._con()
        con.executescript(_SCHEMA)
        row = con.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
        self.session = (row[0] if row else 0) + 1
        con.execute("INSERT OR REPLACE INTO meta VALUES ('session', ?)", (self.session,))
        self._bytes = int(con.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM outbox").fetchone()[0])

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=True)
            con.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the
            # last transactions, and the edge's replay covers that for file sources.
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def put(self, kind: str, clock: float, data: bytes) -> int:
        """Append one message; returns its sequence number. Drops the oldest rows when full."""
        con = self._con()
        cur = con.execute("INSERT INTO outbox (kind, clock, session, data) VALUES (?, ?, ?, ?)",
                          (kind, float(clock), self.session, data))
        with self._lock:
            self._bytes += len(data)
            over = self._bytes > self.max_bytes
        if over:
            self._trim(con)
        return int(cur.lastrowid or 0)

    def _trim(self, con: sqlite3.Connection) -> None:
        with self._lock:
            excess = self._bytes - self.max_bytes
        # one write transaction, so a concurrent remove_upto cannot make the byte count drift
        with sqlite_write_transaction(con):
            rows = con.execute("SELECT seq, LENGTH(data) FROM outbox ORDER BY seq").fetchall()
            cut, freed, n = 0, 0, 0
            for seq, size in rows[:-1]:  # never the row just written
                if freed >= excess:
                    break
                cut, freed, n = seq, freed + size, n + 1
            if n:
                con.execute("DELETE FROM outbox WHERE seq <= ?", (cut,))
        with self._lock:
            self._bytes -= freed
            self.dropped += n

    def peek(self, limit: int) -> list[Outgoing]:
        """The oldest ``limit`` messages, in order."""
        rows = self._con().execute("SELECT seq, kind, clock, session, data FROM outbox ORDER BY seq LIMIT ?",
                                   (limit,)).fetchall()
        return [Outgoing(int(s), k, float(c), int(se), bytes(d)) for s, k, c, se, d in rows]

    def remove_upto(self, seq: int) -> None:
        """Forget every message up to ``seq`` (the broker has them)."""
        con = self._con()
        with sqlite_write_transaction(con):
            row = con.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM outbox WHERE seq <= ?", (seq,)).fetchone()
            con.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
        with self._lock:
            self._bytes -= int(row[0])

    def __len__(self) -> int:
        return int(self._con().execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
