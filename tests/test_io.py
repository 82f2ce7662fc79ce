"""Atomic writes keep the old file when a write fails half-way."""

from __future__ import annotations

import os

import pytest

from reid_edge.errors import ReidEdgeError
from reid_edge.io import atomic_open, atomic_write_json, prepare_out_dir


def test_atomic_write_replaces_and_survives_crash(tmp_path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write('{"half": ')
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip().startswith("{") and '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "temporary file left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_prepare_out_dir_refuses_non_empty(tmp_path) -> None:
    out = tmp_path / "out"
    prepare_out_dir(out)
    (out / "x").write_text("keep me")
    with pytest.raises(ReidEdgeError, match="not empty"):
        prepare_out_dir(out)
    prepare_out_dir(out, overwrite=True)
    assert (out / "x").read_text() == "keep me"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReidEdgeError, match="not a folder"):
        prepare_out_dir(blocker)
