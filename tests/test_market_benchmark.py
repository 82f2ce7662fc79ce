"""``python -m benchmarks.market``: the Market-protocol curve (epoch 0, evaluated epochs) and --resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.market import CURVE_FILE, START_FILE, curve_rows, main
from reid_edge.synth.crops import generate_crops

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_curve_rows_accumulate_time_and_skip_unevaluated_epochs() -> None:
    start = {"mAP": 0.1, "rank1": 0.2, "eval_seconds": 2.0, "setup_seconds": 3.0}
    history = [{"epoch": 1, "seconds": 10.0, "mAP": None},
               {"epoch": 2, "seconds": 12.0, "mAP": 0.3, "rank1": 0.4, "eval_seconds": 1.5}]
    rows = curve_rows(start, history)
    assert [r["epoch"] for r in rows] == [0, 2]
    assert rows[0]["total_seconds"] == 5.0
    assert rows[1]["total_train_seconds"] == 22.0 and rows[1]["total_seconds"] == 5.0 + 22.0 + 1.5


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_market_benchmark_writes_the_curve_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "market"
    generate_crops(data, ids=8, cameras=2, seed=0, height=32, width=16, per_camera=2)
    out = tmp_path / "run"
    common = ["--out", str(out), "--workers", "0"]
    assert main(["--data", str(data), *common, "--backbone", "resnet18", "--epochs", "1", "--eval-every", "1",
                 "--batch-size", "4", "--height", "32", "--width", "16", "--embed-dim", "16",
                 "--num-stripes", "2"]) == 0
    rows = _read(out / CURVE_FILE)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    start = json.loads((out / START_FILE).read_text())
    assert float(rows[0]["mAP"]) == pytest.approx(start["mAP"], rel=1e-5)
    assert 0.0 <= float(rows[1]["mAP"]) <= 1.0
    # continuing to epoch 2 keeps the start and extends the same curve, with a growing clock
    assert main([*common, "--resume", "--epochs", "2"]) == 0
    rows = _read(out / CURVE_FILE)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    totals = [float(r["total_seconds"]) for r in rows]
    assert totals == sorted(totals) and totals[2] > totals[1]
    assert "curve:" in capsys.readouterr().out


def test_market_benchmark_refuses_data_without_a_test_split(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    crops = tmp_path / "crops" / "cam1"
    crops.mkdir(parents=True)
    assert main(["--out", str(tmp_path / "run")]) == 2
    assert "no data" in capsys.readouterr().err


def test_reid_models_gallery_every_keeps_every_nth_gallery_crop(tmp_path: Path) -> None:
    from benchmarks.reid_models import evaluate_model

    data = tmp_path / "market"
    generate_crops(data, ids=24, cameras=2, seed=1, height=32, width=16, per_camera=3)
    full = evaluate_model("hsv", "synth", data, None, log=lambda _m: None)
    half = evaluate_model("hsv", "synth", data, None, log=lambda _m: None, gallery_every=2)
    assert half["num_gallery"] == (full["num_gallery"] + 1) // 2 and half["gallery_every"] == 2
    assert half["num_query"] == full["num_query"]


def test_reid_models_camera_centre_rows_and_missing_training_crops(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from benchmarks.reid_models import main

    data = tmp_path / "market"
    generate_crops(data, ids=12, cameras=2, seed=3, height=32, width=16, per_camera=3)
    out = tmp_path / "rows.json"
    assert main(["--data", f"synth={data}", "--models", "hsv", "--camera-centre", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["camera_centre"] for r in rows] == [False, True]
    assert rows[0]["num_query"] == rows[1]["num_query"] and 0.0 < rows[1]["mAP"] <= 1.0
    assert "hsv +centre" in capsys.readouterr().out
    shutil.rmtree(data / "bounding_box_train")
    assert main(["--data", f"synth={data}", "--models", "hsv", "--camera-centre"]) == 2
    assert "no bounding_box_train" in capsys.readouterr().err


def test_an_interrupted_market_run_keeps_its_curve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reid_edge.train.trainer import Trainer

    data = tmp_path / "market"
    generate_crops(data, ids=8, cameras=2, seed=0, height=32, width=16, per_camera=2)
    out = tmp_path / "run"
    real_epoch = Trainer.train_epoch

    def epoch_or_interrupt(self: Trainer, epoch: int) -> dict[str, object]:
        if epoch == 1:
            raise KeyboardInterrupt  # the session ends during the second epoch
        return real_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", epoch_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(["--data", str(data), "--out", str(out), "--workers", "0", "--backbone", "resnet18", "--epochs", "3",
              "--eval-every", "1", "--batch-size", "4", "--height", "32", "--width", "16", "--embed-dim", "16",
              "--num-stripes", "2"])
    assert [r["epoch"] for r in _read(out / CURVE_FILE)] == ["0", "1"]
