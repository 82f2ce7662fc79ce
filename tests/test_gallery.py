"""The SQLite identity gallery: ids survive restarts (also kill -9); bad files are refused, untouched."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from reid_edge.cli import main
from reid_edge.errors import GalleryError
from reid_edge.pipeline.associate import AssociationConfig, Associator, TrackletEvent
from reid_edge.pipeline.gallery import GalleryConfig, IdentityGallery
from reid_edge.pipeline.motfile import read_mot_tracks as read_mot

from .test_pipeline import _colour_onnx
from .test_pipeline_support import make_scene

REPO = Path(__file__).resolve().parents[1]


def _ev(eid: str, cam: str, t: float, *g: float) -> TrackletEvent:
    return TrackletEvent(eid, cam, t, t + 2, np.array(g, dtype=np.float64), None, 1.0, True)


def test_people_keep_their_ids_across_sessions(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with IdentityGallery(path, 3, "m") as gal:
        a = Associator(AssociationConfig(max_distance=0.5), 1.0, 3, gallery=gal)
        d = a.decide([_ev("c1/1", "c1", 0, 1, 0, 0), _ev("c1/2", "c1", 0, 0, 1, 0)])
        assert [x.global_id for x in d] == [1, 2]
        a.update(TrackletEvent("c1/1", "c1", 0, 9, np.array([2.0, 0.2, 0]), None, 2.0, True))
        a.flush()
        assert len(gal) == 2
    with IdentityGallery(path, 3, "m") as gal:
        stored = {r.gid: r for r in gal.load()}
        assert stored[1].tracklets == 1 and stored[1].cameras == ("c1",)
        np.testing.assert_allclose(stored[1].global_sum, [2.0, 0.2, 0])  # the refined appearance was kept
        b = Associator(AssociationConfig(max_distance=0.5), 1.0, 3, gallery=gal)
        # same clock values as the first session: old times do not forbid anything
        d = b.decide([_ev("c2/5", "c2", 0, 0, 1, 0.05), _ev("c1/1", "c1", 0, 1, 0.1, 0), _ev("c1/3", "c1", 0, 0, 0, 1)])
        assert [x.global_id for x in d] == [2, 1, 3]  # known people get their ids, a new one the next id
    with IdentityGallery(path, 3, "m") as gal:
        assert gal.next_gid() == 4 and {r.gid: r.tracklets for r in gal.load()} == {1: 2, 2: 2, 3: 1}


def test_same_camera_gate_counts_the_cameras_of_earlier_sessions(tmp_path: Path) -> None:
    """A gallery identity seen by c1 last session is a same-camera re-link for a c1 tracklet today."""
    path = tmp_path / "g.db"
    with IdentityGallery(path, 2, "m") as gal:
        first = Associator(AssociationConfig(max_distance=0.5), 1.0, 2, gallery=gal)
        first.decide([_ev("c1/1", "c1", 0, 1, 0)])
        first.flush()
    look = (1.0, 0.45)  # 0.43 from the stored (1, 0): under the gate 0.5, over the same-camera gate 0.3
    for camera, same_camera, want in (("c1", None, 1), ("c1", 0.3, 2), ("c2", 0.3, 1)):
        session = tmp_path / f"{camera}-{same_camera}.db"  # each case from the same stored gallery
        session.write_bytes(path.read_bytes())
        with IdentityGallery(session, 2, "m") as gal:
            a = Associator(AssociationConfig(max_distance=0.5, same_camera_max_distance=same_camera), 1.0, 2,
                           gallery=gal)
            assert [d.global_id for d in a.decide([_ev(f"{camera}/9", camera, 0, *look)])] == [want], (camera,
                                                                                                     same_camera)


def test_eviction_by_age_and_size(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with IdentityGallery(path, 2, "m", GalleryConfig(max_identities=3)) as gal:
        a = Associator(AssociationConfig(max_distance=0.1), 1.0, 2, gallery=gal)
        for i in range(5):
            a.decide([_ev(f"e{i}", "c1", 10 * i, np.cos(i), np.sin(i))])
        assert sorted(r.gid for r in gal.load()) == [3, 4, 5]  # the least recently seen went first
        assert gal.next_gid() == 6  # ids are never reused
    conn = sqlite3.connect(path)
    conn.execute("UPDATE identities SET last_seen = last_seen - 7200 WHERE gid = 4")
    conn.commit()
    conn.close()
    with IdentityGallery(path, 2, "m", GalleryConfig(max_age_s=3600)) as gal:
        assert sorted(r.gid for r in gal.load()) == [3, 5] and gal.evicted == 1


def _bytes(p: Path) -> bytes:
    return p.read_bytes()


def test_bad_gallery_files_are_refused_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"these are someone's notes, not a gallery\n" * 100)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()
    good = tmp_path / "good.db"
    with IdentityGallery(good, 2, "model-a") as gal:
        Associator(AssociationConfig(), 1.0, 2, gallery=gal).decide([_ev("e", "c1", 0, 1, 0)])
    corrupt = tmp_path / "corrupt.db"
    data = bytearray(good.read_bytes())
    data[100:4096 * 2] = b"\xff" * (4096 * 2 - 100)  # the schema page and the first table page
    corrupt.write_bytes(bytes(data))
    cases = [(junk, 2, "m", "not an SQLite file"), (foreign, 2, "m", "not a reid-edge gallery"),
             (good, 2, "model-b", "another model"), (good, 3, "model-a", "another model"),
             (corrupt, 2, "model-a", "corrupt")]
    for path, dim, key, msg in cases:
        before = _bytes(path)
        with pytest.raises(GalleryError, match=msg):
            IdentityGallery(path, dim, key)
        assert _bytes(path) == before, path
    # through the CLI: one line on stderr, exit code 2, file untouched
    model = _colour_onnx(tmp_path / "colour.onnx")
    before = _bytes(junk)
    rc = main(["run", "--cameras", "a.mp4", "--model", str(model), "--gallery", str(junk), "--out",
               str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "not an SQLite file" in err
    assert _bytes(junk) == before


def _ids_by_person(out: Path, scene: Path, cam: str) -> dict[int, int]:
    """Ground-truth person -> the global id most of their boxes got (IoU >= 0.5)."""
    gt = read_mot(scene / f"{cam}.gt.txt", is_gt=True)
    pred = read_mot(out / f"{cam}.txt")
    votes: dict[int, Counter[int]] = {}
    for frame, (pids, pboxes) in pred.items():
        if frame not in gt:
            continue
        gids, gboxes = gt[frame]
        for pid, pb in zip(pids, pboxes):
            x1 = np.maximum(pb[0], gboxes[:, 0])
            y1 = np.maximum(pb[1], gboxes[:, 1])
            x2 = np.minimum(pb[0] + pb[2], gboxes[:, 0] + gboxes[:, 2])
            y2 = np.minimum(pb[1] + pb[3], gboxes[:, 1] + gboxes[:, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            iou = inter / (pb[2] * pb[3] + gboxes[:, 2] * gboxes[:, 3] - inter)
            j = int(np.argmax(iou))
            if iou[j] >= 0.5:
                votes.setdefault(int(gids[j]), Counter())[int(pid)] += 1
    return {p: c.most_common(1)[0][0] for p, c in votes.items()}


def _run_cmd(scene: Path, model: Path, out: Path, gallery: Path | None, cams: tuple[str, ...]) -> list[str]:
    cmd = [sys.executable, "-m", "reid_edge", "run", "--cameras", *[str(scene / f"{c}.mp4") for c in cams],
           "--detections", str(scene), "--model", str(model), "--out", str(out), "--device", "cpu",
           "--no-progress"]
    return cmd + (["--gallery", str(gallery)] if gallery is not None else [])


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_kill_9_mid_run_then_restart_keeps_each_persons_id(tmp_path: Path) -> None:
    """Session 1 is killed once the gallery holds two people; session 2 (a restart, other footage
    where the same people come in the opposite order) gives each of them their session-1 id."""
    model = _colour_onnx(tmp_path / "colour.onnx")
    first, second = tmp_path / "first", tmp_path / "second"
    make_scene(first, people=4, frames=400)
    make_scene(second, people=4, frames=120, colours=[3, 2, 1, 0])
    gallery = tmp_path / "people.db"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(_run_cmd(first, model, tmp_path / "o1", gallery, ("cam1", "cam2")), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if gallery.exists():
            try:
                conn = sqlite3.connect(f"file:{gallery}?mode=ro", uri=True, timeout=0.1)
                stored = conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                stored = 0
        if stored >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"session 1 was not killed mid-run: {proc.stderr.read()[-500:]!r}"
    before = _ids_by_person(tmp_path / "o1", first, "cam1")  # rows are flushed as they are written
    assert len(before) >= 2, before
    colour_of_first = {p: p - 1 for p in before}  # scene 1: person k wears colour k - 1
    conn = sqlite3.connect(gallery)
    next_gid = int(conn.execute("SELECT value FROM meta WHERE key='next_gid'").fetchone()[0])
    conn.close()
    res = subprocess.run(_run_cmd(second, model, tmp_path / "o2", gallery, ("cam1",)), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-800:]
    after = _ids_by_person(tmp_path / "o2", second, "cam1")
    person_in_second = {3 - c + 1: c for c in range(4)}  # scene 2: person k wears colour 4 - k
    by_colour_after = {person_in_second[p]: gid for p, gid in after.items()}
    for p, gid in before.items():
        assert by_colour_after[colour_of_first[p]] == gid, (before, after)
    # people first seen after the restart get ids after every stored one
    new = {c: gid for c, gid in by_colour_after.items() if c not in colour_of_first.values()}
    assert all(gid >= next_gid for gid in new.values()), (new, next_gid)
    assert len(set(by_colour_after.values())) == 4
    print(f"session 1 (killed): {before}; next id {next_gid}; session 2 by colour: {by_colour_after}")
    # the control: without the gallery the restart numbers people in the order they come
    res = subprocess.run(_run_cmd(second, model, tmp_path / "o3", None, ("cam1",)), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-800:]
    plain = {person_in_second[p]: gid for p, gid in _ids_by_person(tmp_path / "o3", second, "cam1").items()}
    assert any(plain[colour_of_first[p]] != gid for p, gid in before.items()), plain
    print(f"without the gallery: {plain}")
