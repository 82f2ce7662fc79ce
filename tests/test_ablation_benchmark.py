"""The ablation harness (benchmarks/ablation.py) on hand-made folders and the shared mini set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.ablation import VARIANTS, build_subset, main, person_id


def test_subset_keeps_every_kth_identity(tmp_path: Path) -> None:
    root = tmp_path / "market"
    names = {"bounding_box_train": ["0002_c1s1_000451_03.jpg", "0003_c1s1_000551_01.jpg", "0004_c2s1_000001_01.jpg"],
             "query": ["0010_c1s1_000001_00.jpg", "0011_c2s1_000001_00.jpg"],
             "bounding_box_test": ["0010_c3s1_000001_01.jpg", "0011_c4s1_000001_01.jpg", "-1_c1s1_000001_01.jpg",
                                   "0000_c1s1_000002_01.jpg", "0000_c1s1_000003_01.jpg"]}
    for split, files in names.items():
        (root / split).mkdir(parents=True)
        for n in files:
            (root / split / n).write_bytes(b"x")
    out = build_subset(root, tmp_path / "sub", ids_every=2, test_every=1)
    assert sorted(p.name for p in (out / "bounding_box_train").iterdir()) == [
        "0002_c1s1_000451_03.jpg", "0004_c2s1_000001_01.jpg"]  # identities 2 and 4 of 2, 3, 4
    assert len(list((out / "bounding_box_test").iterdir())) == 5 and len(list((out / "query").iterdir())) == 2
    assert person_id("-1_c1s1_000001_01.jpg") == -1 and person_id("x.jpg") is None
    assert json.loads((out / ".complete").read_text()) == {"ids_every": 2, "test_every": 1}


def test_two_variants_on_the_mini_set(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mini = shared_data / "market1501_mini"
    if not mini.is_dir():
        pytest.skip(f"{mini} is absent")
    argv = ["--data", str(mini), "--out", str(tmp_path / "abl"), "--ids-every", "1", "--epochs", "1",
            "--warmup-epochs", "0", "--only", "start", "default", "no-stripes", "--pretrained", "none"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| start |" in table and "| default |" in table and "| no-stripes |" in table
    start = json.loads((tmp_path / "abl" / "start" / "result.json").read_text())
    assert start["epochs"] == 0 and start["train_seconds"] == 0 and 0.0 <= start["mAP"] <= 1.0
    assert not (tmp_path / "abl" / "start" / "last.pt").exists()  # evaluated, never trained
    first = json.loads((tmp_path / "abl" / "no-stripes" / "result.json").read_text())
    assert 0.0 <= first["mAP"] <= 1.0 and first["epochs"] == 1
    assert main(argv) == 0  # finished variants are read back, not trained again
    assert json.loads((tmp_path / "abl" / "no-stripes" / "result.json").read_text()) == first
    # the diagnostic of what limits training, on the variant's checkpoint (labels read after training)
    from benchmarks.positive_precision import positive_precision

    pp = positive_precision(tmp_path / "abl" / "default" / "last.pt", k=1)
    assert pp["anchors"] > 0 and 0.0 <= pp["precision"] <= 1.0 and pp["precision"] == pp["all_correct"]
    assert not pp["camera_centre"]
    centred = positive_precision(tmp_path / "abl" / "default" / "last.pt", k=1, camera_centre=True)
    assert centred["camera_centre"] and centred["anchors"] == pp["anchors"] and 0.0 <= centred["precision"] <= 1.0
    assert set(VARIANTS) >= {"start", "default", "k1", "random-neg", "lc0", "lc0.5", "lc1.0", "no-stripes", "float32",
                            "camera-centre"}
