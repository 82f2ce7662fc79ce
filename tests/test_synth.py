"""Synthetic data generators: layout, determinism, ground truth, hardness, CLI errors."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_edge.cli import main
from reid_edge.errors import ConfigError, ReidEdgeError
from reid_edge.synth.baseline import hsv_histogram_baseline, read_market_folder
from reid_edge.synth.camera import make_camera, parse_domain
from reid_edge.synth.crops import SPLITS, generate_crops
from reid_edge.synth.people import identity_for
from reid_edge.synth.render import render_person, sample_view
from reid_edge.synth.scene import generate_scene, parse_size

NAME = re.compile(r"^(\d{4})_c(\d)s1_(\d{6})_(\d{2})\.jpg$")


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mean_ap(
    dist: np.ndarray,
    qp: np.ndarray,
    gp: np.ndarray,
    qc: np.ndarray,
    gc: np.ndarray,
    same_camera: bool = False,
) -> float:
    """Market mAP. Cross-camera: drop gallery items with the query's pid AND camera.
    Same-camera: keep only gallery items from the query's camera."""
    aps = []
    for i in range(len(qp)):
        keep = gc == qc[i] if same_camera else ~((gp == qp[i]) & (gc == qc[i]))
        match = (gp[keep] == qp[i])[np.argsort(dist[i, keep], kind="stable")]
        if not match.any():
            continue
        ranks = np.flatnonzero(match) + 1
        aps.append(float((np.arange(1, len(ranks) + 1) / ranks).mean()))
    return float(np.mean(aps))


def test_mean_ap_by_hand() -> None:
    # query pid 1 cam 1; gallery: (1, cam 2) at rank 2, (2, cam 2) rank 1, (1, cam 1) ignored cross-camera.
    dist = np.array([[0.5, 0.1, 0.0]])
    qp, qc = np.array([1]), np.array([1])
    gp, gc = np.array([1, 2, 1]), np.array([2, 2, 1])
    assert mean_ap(dist, qp, gp, qc, gc) == pytest.approx(0.5)
    assert mean_ap(dist, qp, gp, qc, gc, same_camera=True) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def crops_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crops") / "synth"
    generate_crops(out, ids=40, cameras=4, seed=0)
    return out


def test_crops_layout_and_splits(crops_dir: Path) -> None:
    pids: dict[str, set[int]] = {}
    cams_of: dict[int, set[int]] = {}
    for split in SPLITS:
        files = sorted((crops_dir / split).iterdir())
        assert files, split
        pids[split] = set()
        for f in files:
            m = NAME.match(f.name)
            assert m, f.name
            pid, cam = int(m.group(1)), int(m.group(2))
            assert 1 <= cam <= 4
            pids[split].add(pid)
            if pid:
                cams_of.setdefault(pid, set()).add(cam)
        img = cv2.imread(str(files[0]))
        assert img.shape == (128, 64, 3)
    train, gallery, query = pids["bounding_box_train"], pids["bounding_box_test"], pids["query"]
    assert 0 not in train and 0 not in query and 0 in gallery  # distractors only in the gallery
    assert not train & (gallery | query)  # disjoint identities
    assert len(train) == 20 and len(gallery - {0}) == 20
    assert query <= gallery
    assert all(len(c) >= 2 for c in cams_of.values())
    meta = json.loads((crops_dir / "synth.json").read_text())
    assert meta["train_ids"] == 20 and meta["cameras"] == 4
    # one query per (test id, camera) and each query has a true match from another camera
    _, qp, qc = read_market_folder(crops_dir / "query")
    _, gp, gc = read_market_folder(crops_dir / "bounding_box_test")
    assert len(set(zip(qp.tolist(), qc.tolist()))) == len(qp)
    for p, c in zip(qp, qc):
        assert ((gp == p) & (gc != c)).any()


def test_histogram_baseline_fails_across_cameras_but_works_within(crops_dir: Path) -> None:
    qi, qp, qc = read_market_folder(crops_dir / "query")
    gi, gp, gc = read_market_folder(crops_dir / "bounding_box_test")
    dist = hsv_histogram_baseline(qi, gi)
    cross = mean_ap(dist, qp, gp, qc, gc)
    same = mean_ap(dist, qp, gp, qc, gc, same_camera=True)
    assert cross < 0.5
    assert same > 0.7 and same >= cross + 0.25

    # ...yet identity survives the camera transform: a camera-normalised (grey-world), per-stripe
    # colour descriptor of the body region matches across cameras far better than chance.
    def stripes(img: np.ndarray) -> np.ndarray:
        body = img[:, 16:48].astype(np.float32)
        norm = np.clip(body / (body.reshape(-1, 3).mean(0) + 1.0) * 110.0, 0, 255).astype(np.uint8)
        hsv = cv2.cvtColor(norm, cv2.COLOR_BGR2HSV)
        parts = [
            cv2.calcHist(
                [hsv[k * 16 : (k + 1) * 16]], [0, 1, 2], None, [8, 3, 3], [0, 180, 0, 256, 0, 256]
            ).ravel()
            for k in range(8)
        ]
        return np.concatenate([np.sqrt(h / h.sum()) for h in parts])

    q = np.stack([stripes(x) for x in qi])
    g = np.stack([stripes(x) for x in gi])
    invariant = mean_ap(((q[:, None] - g[None]) ** 2).sum(-1), qp, gp, qc, gc)
    assert invariant > 0.4 and invariant > cross + 0.3


def test_crops_deterministic(tmp_path: Path) -> None:
    generate_crops(tmp_path / "a", ids=6, cameras=3, seed=5, per_camera=2)
    generate_crops(tmp_path / "b", ids=6, cameras=3, seed=5, per_camera=2)
    generate_crops(tmp_path / "c", ids=6, cameras=3, seed=6, per_camera=2)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b and len(a) > 10
    assert a != c


def test_render_person_shapes_and_camera_shift() -> None:
    ident = identity_for(0, 3)
    imgs = []
    for cam_index in (1, 2):
        cam = make_camera(cam_index, 0)
        rng = np.random.default_rng(0)
        img = render_person(ident, cam, sample_view(cam, rng), rng, 96, 48)
        assert img.shape == (96, 48, 3) and img.dtype == np.uint8
        imgs.append(img)
    assert np.abs(imgs[0].astype(int) - imgs[1].astype(int)).mean() > 5
    # a new domain is a new site: the same camera index looks different
    assert make_camera(1, 0).matrix != make_camera(1, 1).matrix
    assert parse_domain("B") == 1 and parse_domain("3") == 3
    with pytest.raises(ConfigError):
        parse_domain("x1")


def _read_mot(path: Path) -> np.ndarray:
    rows = [line.split(",") for line in path.read_text().splitlines() if line]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 10)


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "s"
    generate_scene(out, cameras=2, people=6, seconds=20, seed=0, fps=10, size=(480, 270))
    return out


def test_scene_ground_truth(scene_dir: Path) -> None:
    meta = json.loads((scene_dir / "scene.json").read_text())
    assert meta["frames"] == 200 and meta["width"] == 480 and meta["height"] == 270
    cams_of: dict[int, set[int]] = {}
    overlaps = 0
    for cam in (1, 2):
        gt = _read_mot(scene_dir / f"cam{cam}.gt.txt")
        assert gt.size
        frames, x, y, w, h = gt[:, 0], gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5]
        assert frames.min() >= 1 and frames.max() <= 200
        assert (x >= 0).all() and (y >= 0).all() and (w > 0).all() and (h > 0).all()
        assert (x + w <= 480).all() and (y + h <= 270).all()
        assert (gt[:, 6:] == [1, -1, -1, -1]).all()
        assert h.max() >= 60 * 270 / 360 * 0.9  # pedestrian scale
        for pid in np.unique(gt[:, 1]).astype(int):
            cams_of.setdefault(pid, set()).add(cam)
        for f in np.unique(frames):  # some people occlude each other
            b = gt[frames == f][:, 2:6]
            for i in range(len(b)):
                for j in range(i + 1, len(b)):
                    ix = min(b[i, 0] + b[i, 2], b[j, 0] + b[j, 2]) - max(b[i, 0], b[j, 0])
                    iy = min(b[i, 1] + b[i, 3], b[j, 1] + b[j, 3]) - max(b[i, 1], b[j, 1])
                    overlaps += ix > 0 and iy > 0
        # one box per person per frame
        keys = set(zip(frames.tolist(), gt[:, 1].tolist()))
        assert len(keys) == len(gt)
    assert set(cams_of) == set(range(1, 7))
    assert all(len(c) >= 2 for c in cams_of.values())  # same id in >= 2 cameras
    assert overlaps > 0
    visits = {p["id"]: p["visits"] for p in meta["people_visits"]}
    assert all(len({v["camera"] for v in vs}) >= 2 for vs in visits.values())


def test_scene_detections_are_noisy(scene_dir: Path) -> None:
    for cam in (1, 2):
        gt = _read_mot(scene_dir / f"cam{cam}.gt.txt")
        det = _read_mot(scene_dir / f"cam{cam}.det.txt")
        assert (det[:, 1] == -1).all()
        conf = det[:, 6]
        assert (conf > 0).all() and (conf <= 1).all()
        assert (det[:, 2] >= 0).all() and (det[:, 2] + det[:, 4] <= 480 + 1e-6).all()
        assert 0.75 * len(gt) < len(det) < 1.05 * len(gt)  # a few misses, a few false positives
        gt_keys = {tuple(r) for r in gt[:, [0, 2, 3, 4, 5]].tolist()}
        det_keys = {tuple(r) for r in det[:, [0, 2, 3, 4, 5]].tolist()}
        assert len(gt_keys & det_keys) < 0.2 * len(gt)  # jittered, not copies of the ground truth
        assert conf.min() < 0.5 < conf.max()  # low-confidence false positives exist


def test_scene_videos_decode(scene_dir: Path) -> None:
    for cam in (1, 2):
        cap = cv2.VideoCapture(str(scene_dir / f"cam{cam}.mp4"))
        assert cap.isOpened()
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (270, 480, 3)
            n += 1
        cap.release()
        assert n == 200


def test_scene_deterministic(tmp_path: Path) -> None:
    kw = dict(cameras=2, people=3, seconds=2.0, fps=10, size=(320, 180))
    generate_scene(tmp_path / "a", seed=1, **kw)
    generate_scene(tmp_path / "b", seed=1, **kw)
    generate_scene(tmp_path / "c", seed=2, **kw)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b and set(a) == {
        "cam1.mp4",
        "cam2.mp4",
        "cam1.gt.txt",
        "cam2.gt.txt",
        "cam1.det.txt",
        "cam2.det.txt",
        "scene.json",
    }
    assert a["cam1.mp4"] != c["cam1.mp4"] and a["cam1.gt.txt"] != c["cam1.gt.txt"]


def test_scene_domain_changes_appearance_not_people(tmp_path: Path) -> None:
    kw = dict(cameras=2, people=2, seconds=1.5, fps=10, size=(320, 180), seed=3)
    generate_scene(tmp_path / "a", domain=0, **kw)
    generate_scene(tmp_path / "b", domain=1, **kw)
    assert (tmp_path / "a" / "cam1.gt.txt").read_text() == (tmp_path / "b" / "cam1.gt.txt").read_text()
    assert _digest(tmp_path / "a")["cam1.mp4"] != _digest(tmp_path / "b")["cam1.mp4"]


def test_library_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate_crops(tmp_path / "x", ids=2, cameras=1)
    with pytest.raises(ConfigError):
        generate_scene(tmp_path / "y", cameras=2, people=2, seconds=0.5)
    with pytest.raises(ConfigError):
        parse_size("640by360")
    assert parse_size("640x360") == (640, 360)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ReidEdgeError):
        generate_crops(tmp_path / "full", ids=2, cameras=2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["synth", "crops", "--ids", "1", "--cameras", "2"], "--ids"),
        (["synth", "crops", "--ids", "4", "--cameras", "1"], "--cameras"),
        (["synth", "crops", "--ids", "0", "--cameras", "2"], "--ids"),
        (["synth", "crops", "--ids", "4", "--cameras", "2", "--domain", "?!"], "--domain"),
        (["synth", "scene", "--cameras", "2", "--people", "0", "--seconds", "5"], "--people"),
        (["synth", "scene", "--cameras", "2", "--people", "2", "--seconds", "-1"], "--seconds"),
        (["synth", "scene", "--cameras", "0", "--people", "2", "--seconds", "5"], "--cameras"),
        (["synth", "scene", "--cameras", "2", "--people", "2", "--seconds", "5", "--size", "big"], "--size"),
    ],
)
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    rc = main([*args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_cli_out_dir_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    rc = main(["synth", "crops", "--ids", "2", "--cameras", "2", "--out", str(full)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--overwrite" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(
        ["synth", "scene", "--cameras", "2", "--people", "1", "--seconds", "2", "--out", str(blocker / "sub")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "cannot write" in err


def test_cli_crops_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    args = ["synth", "crops", "--ids", "4", "--cameras", "2", "--per-camera", "1", "--out", str(out),
            "--height", "64", "--width", "32"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    first = _digest(out)
    assert main([*args, "--seed", "1", "--overwrite"]) == 0
    second = _digest(out)
    assert first != second
    assert not any(p.name.startswith(".") for p in out.iterdir())
    img = cv2.imread(str(next((out / "query").iterdir())))
    assert img.shape == (64, 32, 3)
