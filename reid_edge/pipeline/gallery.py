"""A persistent identity gallery: people keep their global id across restarts (``run --gallery``).

One SQLite file (WAL journal, ``synchronous=FULL``): a table of identities (global id, the
pooled appearance *sums* of all their tracklets, the tracklet count, first and last seen on the
wall clock, cameras) and a table of facts about the gallery (format, version, embedding size,
the model it was built with, the next free id). Every association round that decides
tracklets commits the identities it changed in one transaction, so a crash (even ``kill -9``)
loses at most the appearance refinements since the last commit, never an identity or an id.

At start the stored identities join the :class:`~.associate.Associator` as known people: a
tracklet can match one of them on appearance, and then gets its old id. Their old intervals are
on another session's clock, so the time rules (same-camera overlap, layout travel windows)
apply only to what is seen in this session.

Eviction (documented for users in the README): when the gallery is opened and at each
commit, identities not seen for ``max_age_s`` seconds are deleted, then, if more than
``max_identities`` are left, the least recently seen beyond the cap. Identities evicted while a
run is going keep matching in that run (the Associator still holds them) and are written back
if they are seen again. Ids are never reused (``next_gid`` only grows).

A file that is not SQLite, an SQLite file that is not a reid-edge gallery, a gallery of
another version, embedding size or model, or a corrupt one raises :class:`GalleryError`; the
file is never written to in those cases. One process owns a gallery at a time.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, GalleryError
from ..io import sqlite_write_transaction

FORMAT = "reid-edge-gallery"
VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    gid INTEGER PRIMARY KEY,
    global BLOB,            -- float64 [D]: sum of quality-weighted unit embeddings of all tracklets
    stripes BLOB,           -- float64 [S, d] or NULL
    stripes_shape TEXT,     -- "S,d" or NULL
    tracklets INTEGER NOT NULL,
    first_seen REAL NOT NULL,  -- wall clock, seconds since the epoch
    last_seen REAL NOT NULL,
    cameras TEXT NOT NULL    -- JSON list
);
CREATE INDEX identities_last_seen ON identities (last_seen);
"""


@dataclass(frozen=True)
class GalleryConfig:
    """Eviction limits."""

    max_age_s: float = 30 * 86400.0
    max_identities: int = 100_000

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or self.max_identities < 1:
            raise ConfigError("gallery: need max_age_s > 0 and max_identities >= 1")


@dataclass(frozen=True)
class StoredIdentity:
    gid: int
    global_sum: np.ndarray | None
    stripes_sum: np.ndarray | None
    tracklets: int
    first_seen: float
    last_seen: float
    cameras: tuple[str, ...]


def model_key(card: Any) -> str:
    """Names a model's embedding space: backbone, size and the checkpoint it came from.

    Exports of one checkpoint (FP32, INT8, engine) share the key; without a source checkpoint
    in the card, a hash of the whole card stands in.
    """
    import hashlib

    if card is None:
        return "no-card"
    src = getattr(card, "source_checkpoint_sha256", None)
    if not src:
        text = card.to_json() if hasattr(card, "to_json") else json.dumps(card, sort_keys=True, default=str)
        src = hashlib.sha256(text.encode()).hexdigest()
    return f"{getattr(card, 'backbone', '?')}/{getattr(card, 'global_dim', '?')}/{src[:16]}"


class IdentityGallery:
    """The gallery file (module docstring). Use as a context manager or call :meth:`close`.

    Args:
        path: the SQLite file (created when missing; its folder must exist).
        global_dim: the embedding size of the model in use.
        model_key: names the embedding space (the model card); a gallery built with another
            model is refused, since its appearances cannot be compared.
        config: eviction limits.
    """

    def __init__(self, path: str | Path, global_dim: int, model_key: str,
                 config: GalleryConfig = GalleryConfig()) -> None:
        self.path = Path(path)
        self.config = config
        self.global_dim = int(global_dim)
        self.model_key = str(model_key)
        self.evicted = 0
        fresh = not self.path.exists()
        if fresh:
            if not self.path.parent.is_dir():
                raise GalleryError(f"gallery {self.path}: folder {self.path.parent} does not exist")
        else:
            self._check_header()
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None)
        except sqlite3.Error as exc:
            raise GalleryError(f"gallery {self.path} cannot be opened ({exc})") from None
        try:
            if fresh:
                self._create()
            else:
                self._check_contents()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self._evict(time.time())
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise GalleryError(f"gallery {self.path} is corrupt ({exc}); it was left as it is") from None
        except BaseException:
            self.conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------------------
    def _check_header(self) -> None:
        if not self.path.is_file():
            raise GalleryError(f"gallery {self.path} is not a file")
        with open(self.path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
        if head != SQLITE_MAGIC:
            raise GalleryError(f"{self.path} is not a reid-edge gallery (not an SQLite file); it was left as it is")

    def _create(self) -> None:
        with self._transaction():
            for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
                self.conn.execute(stmt)
            self.conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("format", FORMAT), ("version", str(VERSION)), ("global_dim", str(self.global_dim)),
                ("model", self.model_key), ("next_gid", "1"), ("created", str(time.time()))])

    def _check_contents(self) -> None:
        ok = self.conn.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise GalleryError(f"gallery {self.path} is corrupt (quick_check: {ok[0] if ok else 'no answer'}); "
                               "it was left as it is")
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "identities"} <= tables:
            raise GalleryError(f"{self.path} is an SQLite file but not a reid-edge gallery; it was left as it is")
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise GalleryError(f"{self.path} is an SQLite file but not a reid-edge gallery; it was left as it is")
        if meta.get("version") != str(VERSION):
            raise GalleryError(f"gallery {self.path} has format version {meta.get('version')}, this reid-edge "
                               f"reads version {VERSION}")
        if meta.get("global_dim") != str(self.global_dim) or meta.get("model") != self.model_key:
            raise GalleryError(f"gallery {self.path} was built with another model ({meta.get('model')}, "
                               f"{meta.get('global_dim')}-d); its people cannot be compared with this model's "
                               "embeddings: use another --gallery file")

    def _transaction(self) -> Any:
        return sqlite_write_transaction(self.conn)

    # -- reading and writing ---------------------------------------------------------------------------
    def next_gid(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='next_gid'").fetchone()[0])

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0])

    def load(self) -> list[StoredIdentity]:
        """Every stored identity, oldest id first."""
        out = []
        try:
            for gid, g, s, shape, n, first, last, cams in self.conn.execute(
                    "SELECT gid, global, stripes, stripes_shape, tracklets, first_seen, last_seen, cameras "
                    "FROM identities ORDER BY gid"):
                gv = None if g is None else np.frombuffer(g, dtype=np.float64).copy()
                if gv is not None and gv.shape != (self.global_dim,):
                    raise GalleryError(f"gallery {self.path}: identity {gid} has a {gv.size}-d embedding")
                sv = None
                if s is not None and shape:
                    sv = np.frombuffer(s, dtype=np.float64).reshape([int(v) for v in shape.split(",")]).copy()
                out.append(StoredIdentity(int(gid), gv, sv, int(n), float(first), float(last),
                                          tuple(json.loads(cams))))
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise GalleryError(f"gallery {self.path} is corrupt ({exc}); it was left as it is") from None
        return out

    def save(self, records: Sequence[tuple[Any, np.ndarray | None, np.ndarray | None]], next_gid: int) -> None:
        """Write identities (``(identity, global_sum, stripes_sum)``) and the next id in one transaction.

        ``identity`` has ``gid``, ``prior_count``, ``members``, ``first_seen``, ``last_seen``,
        ``cameras`` (the Associator's identity record).
        """
        now = time.time()
        rows = []
        for ident, g, s in records:
            rows.append((int(ident.gid), None if g is None else np.asarray(g, np.float64).tobytes(),
                         None if s is None else np.asarray(s, np.float64).tobytes(),
                         None if s is None else ",".join(str(v) for v in np.shape(s)),
                         int(ident.prior_count + len(ident.members)),
                         float(ident.first_seen if ident.first_seen is not None else now),
                         float(ident.last_seen if ident.last_seen is not None else now),
                         json.dumps(sorted(ident.cameras))))
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO identities VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.conn.execute("UPDATE meta SET value=? WHERE key='next_gid' AND CAST(value AS INTEGER) < ?",
                              (str(int(next_gid)), int(next_gid)))
            self._evict_in_tx(now)

    def _evict(self, now: float) -> None:
        with self._transaction():
            self._evict_in_tx(now)

    def _evict_in_tx(self, now: float) -> None:
        cur = self.conn.execute("DELETE FROM identities WHERE last_seen < ?", (now - self.config.max_age_s,))
        self.evicted += max(cur.rowcount, 0)
        over = len(self) - self.config.max_identities
        if over > 0:
            cur = self.conn.execute("DELETE FROM identities WHERE gid IN (SELECT gid FROM identities "
                                    "ORDER BY last_seen, gid LIMIT ?)", (over,))
            self.evicted += max(cur.rowcount, 0)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> IdentityGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
