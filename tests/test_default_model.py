"""The packaged default re-ID model downstream: INT8 export through the project's calibration, the
cross-camera gate from its card, and `reid-edge run` / `bench` without a model argument."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reid_edge.card import read_card
from reid_edge.cli import main
from reid_edge.models import resolve
from reid_edge.pipeline.associate import (
    DEFAULT_MAX_DISTANCE,
    AssociationConfig,
    resolve_gate,
    resolve_same_camera_gate,
)
from reid_edge.pipeline.tracker import DEFAULT_APPEARANCE_GATE, TrackerConfig, resolve_appearance_gate


def test_int8_export_of_the_imported_default_model(market_mini: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Both INT8 encodings of a model the project did not train, calibrated on TRAINING crops only."""
    out = tmp_path / "export"
    rc = main(["export", "--model", "default", "--int8", "--format", "onnx", "--out", str(out),
               "--calib", str(market_mini / "bounding_box_train"), "--calib-size", "16"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "int8_report.json").read_text())
    assert report["crops"]["source"].startswith("16 held-aside")  # scored on crops it was not calibrated on
    for name in ("int8-qdq-trt", "int8-qdq-cpu"):
        cosine = report["encodings"][name]["cosine"]
        assert "stripes" not in cosine  # a global-only model
        assert cosine["global"]["mean"] >= 0.99, (name, cosine)
    fp32_card = read_card(out / "model.onnx")
    assert fp32_card == read_card(resolve("default"))  # copied unchanged
    for filename, encoding in (("model.int8.trt.onnx", "int8-qdq-trt"), ("model.int8.cpu.onnx", "int8-qdq-cpu")):
        card = read_card(out / filename)
        assert (card.encoding, card.precision, card.num_stripes) == (encoding, "int8", 0)
        assert card.calibration_sha256 and card.match_gate == fp32_card.match_gate
        assert card.track_gate == fp32_card.track_gate == 0.85  # the tracker's gate survives quantization
        assert card.same_camera_gate == fp32_card.same_camera_gate == 0.85  # and the same-camera gate
        assert card.extra["source"] == fp32_card.extra["source"]  # provenance survives quantization


def test_export_of_an_onnx_needs_calibration_crops_and_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    assert main(["export", "--model", "default", "--int8", "--format", "onnx", "--out", str(tmp_path / "a")]) == 2
    assert "--calib" in capsys.readouterr().err
    bare = tmp_path / "bare.onnx"
    import onnx

    proto = onnx.load(str(resolve("default")))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    assert main(["export", "--model", str(bare), "--format", "onnx", "--out", str(tmp_path / "b")]) == 2
    assert "reid-edge import" in capsys.readouterr().err


def test_gate_comes_from_the_card_unless_configured() -> None:
    card = read_card(resolve("default"))
    assert resolve_gate(0.7, card) == (0.7, "config")
    gate, source = resolve_gate(AssociationConfig().max_distance, card)
    if card.match_gate is None:
        assert (gate, source) == (DEFAULT_MAX_DISTANCE, "default")
    else:
        assert (gate, source) == (card.match_gate, "model card") and 0 < gate < 2


def test_tracker_gate_comes_from_the_card_unless_configured() -> None:
    """The packaged default carries the tracker's appearance gate measured on MOT15; models without one
    (the project's own) keep the tracker's default."""
    card = read_card(resolve("default"))
    assert resolve_appearance_gate(TrackerConfig().max_appearance_dist, card) == (0.85, "model card")
    assert resolve_appearance_gate(1.1, card) == (1.1, "config")
    assert resolve_appearance_gate(None, card.replace(track_gate=None)) == (DEFAULT_APPEARANCE_GATE, "default")
    assert resolve_appearance_gate(None, None) == (DEFAULT_APPEARANCE_GATE, "default")


def test_same_camera_gate_comes_from_the_card_unless_configured() -> None:
    """The packaged default carries the same-camera gate measured on DukeMTMC-reID; models without one
    (the project's own) have none: the main gate alone, as their results were measured."""
    card = read_card(resolve("default"))
    assert resolve_same_camera_gate(AssociationConfig().same_camera_max_distance, card) == (0.85, "model card")
    assert resolve_same_camera_gate(0.7, card) == (0.7, "config")
    assert resolve_same_camera_gate(None, card.replace(same_camera_gate=None)) == (None, "none")
    assert resolve_same_camera_gate(0.7, None) == (0.7, "config")
    assert card.same_camera_gate is not None and card.match_gate is not None
    assert card.same_camera_gate < card.match_gate  # stricter than the gate, or it changes nothing


def test_run_without_a_model_on_real_clips(shared_data: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The design card's command on a fresh install: no --model, nothing trained in this folder."""
    videos = [shared_data / "videos" / "pets2009_s2l1_view1.avi",
              shared_data / "videos" / "one-by-one-person-detection.mp4"]
    if not all(v.is_file() for v in videos):
        pytest.skip("the real clips are absent")
    monkeypatch.chdir(tmp_path)  # no runs/train here
    rc = main(["run", "--cameras", *map(str, videos), "--max-frames", "60", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "person-reidentification-retail-0288.onnx (default" in err
    out = tmp_path / "runs" / "mtmc"
    for name in ("pets2009_s2l1_view1.txt", "one-by-one-person-detection.txt", "mtmc.txt", "events.jsonl",
                 "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["embeddings"] > 0 and summary["num_identities"] > 0  # people were found and embedded
    card = read_card(resolve("default"))
    assert summary["max_distance_source"] == ("model card" if card.match_gate is not None else "default")
    assert (summary["track_gate"], summary["track_gate_source"]) == (card.track_gate, "model card")
    assert (summary["same_camera_gate"], summary["same_camera_gate_source"]) == (card.same_camera_gate, "model card")
    rows = np.loadtxt(out / "pets2009_s2l1_view1.txt", delimiter=",", ndmin=2)
    assert rows.shape[1] >= 6 and (rows[:, 1] > 0).all()  # MOT rows with global ids


def test_bench_defaults_to_the_packaged_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--batch", "2", "--iterations", "2", "--warmup", "1", "--device", "cpu",
                 "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["model"] for r in results] == ["person-reidentification-retail-0288.onnx"]
    assert results[0]["crops_per_s"] > 0


def test_choose_gate_maximizes_accepted_matches_minus_accepted_non_matches() -> None:
    from benchmarks.match_gate import choose_gate

    pos = np.array([0.2, 0.3, 0.4, 0.9])
    neg = np.array([0.5, 0.6, 0.8, 1.0, 1.2])
    # gate 0.4: TPR 3/4, FPR 0 (J 0.75); gate 0.9: TPR 1, FPR 3/5 (J 0.4)
    out = choose_gate(pos, neg)
    assert out["gate"] == pytest.approx(0.4) and out["tpr"] == 0.75 and out["fpr"] == 0.0


def test_eval_of_an_onnx_model_runs_without_torch(market_mini: Path) -> None:
    """ONNX evaluation lives in the torch-free runtime (reid_edge.metrics / reid_edge.evaluation)."""
    import subprocess
    import sys

    code = ("import sys\nfrom reid_edge.cli import main\n"
            f"rc = main(['eval', '--data', {str(market_mini)!r}, '--device', 'cpu'])\n"
            "print('TORCH', 'torch' in sys.modules)\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "TORCH False" in proc.stdout and "mINP" in proc.stdout
