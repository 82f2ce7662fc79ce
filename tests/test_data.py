"""Dataset readers, augmentation and loaders (train/data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid_edge.errors import DataError
from reid_edge.train.data.datasets import (
    check_readable,
    dataset_fingerprint,
    detect_format,
    evaluation_split,
    msmt17_camera,
    read_dataset,
    read_manifest,
    split_calibration,
)
from reid_edge.train.data.loader import EpochPermutationSampler, build_train_loader, set_loader_epoch
from reid_edge.train.data.transforms import AugmentConfig, augment, preprocess, random_erase, sample_rng


def _img(path: Path, value: int = 128, h: int = 32, w: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[: h // 2] = (value * 7) % 256
    assert cv2.imwrite(str(path), img)
    return path


def _market(root: Path, names: dict[str, list[str]]) -> Path:
    for folder, files in names.items():
        for i, name in enumerate(files):
            _img(root / folder / name, 20 + 10 * i)
    return root


def test_market_mini_counts(market_mini: Path) -> None:
    data = read_dataset(market_mini, "market1501")
    assert (len(data.train), len(data.query), len(data.gallery)) == (32, 32, 32)
    assert detect_format(market_mini) == "market1501"
    assert [s.index for s in data.train] == list(range(32))
    q = data.query[0]
    name = Path(q.path).name
    assert q.pid == int(name[:4]) and q.camid == int(name.split("_")[1][1])
    assert len({s.camid for s in data.train}) >= 2


def test_market_junk_dropped_distractors_kept(tmp_path: Path) -> None:
    root = _market(tmp_path / "m", {
        "bounding_box_train": ["0002_c1s1_000001_01.jpg", "0002_c2s1_000002_01.jpg", "-1_c1s1_000003_01.jpg"],
        "bounding_box_test": ["0003_c1s1_000001_01.jpg", "0000_c2s1_000002_01.jpg", "-1_c3s1_000003_01.jpg"],
        "query": ["0003_c2s1_000005_01.jpg"],
    })
    data = read_dataset(root)
    assert [s.pid for s in data.train] == [2, 2]
    assert sorted(s.pid for s in data.gallery) == [0, 3]
    assert data.query[0].camid == 2


def test_market_training_crops_only(tmp_path: Path) -> None:
    # a site's (or a copy's) bounding_box_train alone: train from it, with nothing to evaluate
    root = _market(tmp_path / "m", {"bounding_box_train": ["0002_c1s1_000001_01.jpg", "0007_c2s1_000002_01.jpg"]})
    data = read_dataset(root)
    assert (data.name, [s.camid for s in data.train]) == ("market1501", [1, 2])
    assert (data.query, data.gallery, data.has_test_split) == ([], [], False)
    assert evaluation_split(data) is None


def test_duke_names_and_detection(tmp_path: Path) -> None:
    root = _market(tmp_path / "duke", {
        "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg"],
        "bounding_box_test": ["0005_c1_f0001.jpg", "0005_c7_f0002.jpg"],
        "query": ["0005_c2_f0003.jpg"],
    })
    assert detect_format(root) == "dukemtmc"
    data = read_dataset(root, "auto")
    assert data.name == "dukemtmc"
    assert [(s.pid, s.camid) for s in data.train] == [(1, 2), (1, 5)]


def test_msmt17_lists_and_camera(tmp_path: Path) -> None:
    root = tmp_path / "msmt"
    train_names = ["0000/0000_000_01_0303morning_0015_0.jpg", "0000/0000_001_05_0303morning_0016_0.jpg"]
    test_names = ["0007/0007_000_03_0303noon_0001_0.jpg", "0007/0007_002_12_0303noon_0002_0.jpg"]
    for n in train_names:
        _img(root / "train" / n)
    for n in test_names:
        _img(root / "test" / n)
    (root / "list_train.txt").write_text("".join(f"{n} 0\n" for n in train_names))
    (root / "list_query.txt").write_text(f"{test_names[0]} 7\n")
    (root / "list_gallery.txt").write_text(f"{test_names[1]} 7\n")
    assert detect_format(root) == "msmt17"
    data = read_dataset(root)
    assert [s.camid for s in data.train] == [1, 5]
    assert data.query[0].camid == 3 and data.gallery[0].camid == 12 and data.gallery[0].pid == 7
    assert msmt17_camera("0000_000_01_0303morning_0015_0.jpg") == 1
    (root / "list_query.txt").write_text("only-a-path\n")
    with pytest.raises(DataError, match="path label"):
        read_dataset(root, "msmt17")


def test_cuhk03_variants(tmp_path: Path) -> None:
    for variant in ("detected", "labeled"):
        _market(tmp_path / "cuhk03-np" / variant, {
            "bounding_box_train": ["0001_c1_1.png", "0001_c2_2.png"],
            "bounding_box_test": ["0010_c1_1.png"],
            "query": ["0010_c2_2.png"],
        })
    root = tmp_path / "cuhk03-np"
    assert detect_format(root) == "cuhk03"
    assert read_dataset(root, "cuhk03", "labeled").name == "cuhk03-labeled"
    assert len(read_dataset(root, "cuhk03").train) == 2


def test_folder_format_all_vs_all(tmp_path: Path) -> None:
    root = _market(tmp_path / "f", {"a": ["0001_c1s1_01.jpg", "0001_c2s1_02.jpg"], "b": ["0002_c1s1_03.jpg"]})
    assert detect_format(root) == "folder"
    data = read_dataset(root)
    assert len(data.train) == 3 and not data.has_test_split
    q, g = evaluation_split(data)
    assert q == g == data.train


def test_unlabeled_cameras_from_folders_and_names(tmp_path: Path) -> None:
    root = tmp_path / "u"
    _img(root / "cam1" / "a.jpg")
    _img(root / "cam3" / "b.jpg")
    _img(root / "lobby" / "c.jpg")
    _img(root / "loose_c2_x.jpg")
    data = read_dataset(root, "unlabeled")
    cams = {Path(s.path).name: s.camid for s in data.train}
    assert cams == {"a.jpg": 1, "b.jpg": 3, "c.jpg": 4, "loose_c2_x.jpg": 2}
    assert all(s.pid == -1 for s in data.train)
    assert evaluation_split(data) is None


def test_manifest(tmp_path: Path) -> None:
    root = tmp_path / "h"
    for i in range(4):
        _img(root / "crops" / f"{i}.jpg")
    (root / "manifest.csv").write_text(
        "path,camera,tracklet,frame\ncrops/0.jpg,cam1,5,10\ncrops/1.jpg,cam1,5,11\n"
        "crops/2.jpg,cam2,5,3\ncrops/3.jpg,cam2,-1,4\n")
    assert detect_format(root) == "unlabeled"
    samples = read_dataset(root).train
    assert [s.camid for s in samples] == [1, 1, 2, 2]
    # tracklet 5 of cam1 and tracklet 5 of cam2 are different tracklets
    assert samples[0].tracklet == samples[1].tracklet != samples[2].tracklet and samples[3].tracklet == -1
    (root / "bad.csv").write_text("path,camera\nx.jpg,1\n")
    with pytest.raises(DataError, match="tracklet"):
        read_manifest(root / "bad.csv")


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nope", "market1501")
    (tmp_path / "empty" / "bounding_box_train").mkdir(parents=True)
    with pytest.raises(DataError, match="no Market-named images"):
        read_dataset(tmp_path / "empty", "market1501")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no images"):
        read_dataset(tmp_path / "none", "unlabeled")
    with pytest.raises(DataError, match="unknown dataset format"):
        read_dataset(tmp_path / "none", "veri")


def test_unreadable_images_skipped_or_fatal(tmp_path: Path) -> None:
    root = tmp_path / "u"
    for i in range(150):
        _img(root / "c1" / f"{i:03d}.jpg", h=8, w=4)
    (root / "c1" / "zzz_broken.jpg").write_bytes(b"not a jpeg")
    samples = read_dataset(root).train
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        good = check_readable(samples)
    assert len(good) == 150 and [s.index for s in good] == list(range(150))
    (root / "c1" / "zzz_broken2.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="cannot be read"):
        check_readable(read_dataset(root).train)


def test_fingerprint_and_calibration_split(tmp_path: Path) -> None:
    root = tmp_path / "u"
    for i in range(40):
        _img(root / "cam1" / f"{i:02d}.jpg")
    samples = read_dataset(root).train
    fp = dataset_fingerprint(samples, root)
    assert fp == dataset_fingerprint(list(reversed(samples)), root)  # order does not matter
    _img(root / "cam1" / "00.jpg", h=64)  # same name, different size
    assert dataset_fingerprint(samples, root) != fp
    train, calib = split_calibration(samples, 5, seed=3)
    assert len(train) == 35 and len(calib) == 5
    assert {s.path for s in train}.isdisjoint(s.path for s in calib)
    assert [s.index for s in train] == list(range(35))
    assert [s.path for s in split_calibration(samples, 5, seed=3)[1]] == [s.path for s in calib]


def test_augment_shapes_determinism_and_flip() -> None:
    x = preprocess([np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8)], 32, 16)[0]
    a = augment(x, sample_rng(1, 2, 3))
    b = augment(x, sample_rng(1, 2, 3))
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, augment(x, sample_rng(1, 3, 3)))
    flip_only = AugmentConfig(flip_p=1.0, padding=0, erase_p=0.0)
    assert np.array_equal(augment(x, sample_rng(0, 0, 0), flip_only), x[:, :, ::-1])
    erased = random_erase(np.ones((3, 32, 16), np.float32), np.random.default_rng(0))
    frac = float((erased == 0).mean())
    assert 0.02 * 0.9 <= frac <= 0.4 * 1.1


def test_train_loader_yields_no_identities(market_mini: Path) -> None:
    samples = read_dataset(market_mini).train
    loader = build_train_loader(samples, height=32, width=16, batch_size=8, workers=0, seed=0)
    set_loader_epoch(loader, 0)
    batch = next(iter(loader))
    assert len(batch) == 3  # image, index, camera: never the pid
    images, index, cams = batch
    assert images.shape == (8, 3, 32, 16) and index.dtype == torch.int64
    assert len(loader) == 4  # drop_last
    by_index = {s.index: s.camid for s in samples}
    assert [by_index[int(i)] for i in index] == cams.tolist()


def test_epoch_sampler_resumable() -> None:
    s = EpochPermutationSampler(10, seed=4)
    s.set_epoch(1)
    first = list(s)
    s.set_epoch(0)
    other = list(s)
    s.set_epoch(1)
    assert list(s) == first != other and sorted(first) == list(range(10))
