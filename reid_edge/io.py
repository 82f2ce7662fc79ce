"""Atomic file writes: a crash never leaves a half-written checkpoint, engine or result."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def sqlite_write_transaction(con: Any) -> Iterator[Any]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit ``sqlite3`` connection (``ROLLBACK`` on any
    exception): the write lock is taken at the start, so a concurrent writer waits instead of
    failing half-way."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def prepare_out_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Create an output folder; refuse an existing non-empty one unless ``overwrite``.

    Raises:
        ReidEdgeError: the folder exists and is not empty, or it cannot be created/written.
    """
    from .errors import ReidEdgeError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ReidEdgeError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ReidEdgeError(f"output folder {out} is not empty (pass --overwrite to write into it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ReidEdgeError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out
