"""``reid-edge export``: the full INT8 path, the capability table and one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from reid_edge.cli import main
from reid_edge.errors import ConfigError, ExportError

from .test_export_support import Tiny, save_tiny_checkpoint, tiny, write_calib_images


@pytest.fixture(scope="session")
def t(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return tiny(tmp_path_factory)


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


# --- capability table ------------------------------------------------------------------------

def test_capability_table() -> None:
    from reid_edge.deploy.capabilities import plan_export

    plan = plan_export(int8=True, has_tensorrt=False)
    assert (plan.format, plan.precision, plan.build_engine) == ("onnx", "int8", False)
    assert "model.int8.cpu.onnx" in plan.files and "model.int8.trt.onnx" in plan.files
    assert "TensorRT is not installed" in plan.notes[0]
    auto = plan_export(int8=True, has_tensorrt=True)
    assert auto.format == "engine" and auto.build_engine and "model.engine" in auto.files
    assert plan_export(format="onnx", fp16=True, has_tensorrt=False).files == ("model.onnx", "model.fp16.onnx")
    assert plan_export(format="engine", batch=(1, 4, 16), has_tensorrt=True).batch == (1, 4, 16)
    with pytest.raises(ConfigError, match="exclude each other"):
        plan_export(int8=True, fp16=True, has_tensorrt=False)
    with pytest.raises(ExportError, match="pip install 'reid-edge\\[tensorrt\\]'"):
        plan_export(format="engine", has_tensorrt=False)
    with pytest.raises(ConfigError, match="opset 11"):
        plan_export(int8=True, opset=11, has_tensorrt=False)
    with pytest.raises(ConfigError, match="needs --format engine"):
        plan_export(format="onnx", batch=(1, 8, 32), has_tensorrt=False)
    with pytest.raises(ConfigError, match="add --int8"):
        plan_export(calibration_flags=("--calib",), has_tensorrt=False)
    with pytest.raises(ConfigError, match="unknown --format"):
        plan_export(format="tflite", has_tensorrt=False)


def test_parse_batch() -> None:
    from reid_edge.deploy.capabilities import parse_batch

    assert parse_batch("1,8,32") == (1, 8, 32) and parse_batch("4") == (4, 4, 4)
    for bad in ("8,1,32", "0,1,2", "a,b,c", "1,2"):
        with pytest.raises(ConfigError):
            parse_batch(bad)


# --- full INT8 export through the CLI --------------------------------------------------------

def test_export_int8_end_to_end(t: Tiny, tmp_path, capsys) -> None:
    out = tmp_path / "exp"
    rc = main(["export", "--checkpoint", str(t.checkpoint), "--int8", "--out", str(out), "--calib-size", "24"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "format onnx" in printed and "parity gate" in printed and str(out) in printed
    for name in ("model.onnx", "model.int8.trt.onnx", "model.int8.cpu.onnx", "calibration.cache", "int8_report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "int8_report.json").read_text())
    assert report["passed"] and set(report["encodings"]) == {"int8-qdq-trt", "int8-qdq-cpu"}
    assert report["calibration"]["images"] == 24 and report["crops"]["count"] == 16  # the 16 images not calibrated on
    for enc in report["encodings"].values():
        assert enc["cosine"]["global"]["mean"] > 0.99
    assert (out / "calibration.cache").read_text().startswith("TRT-")
    from reid_edge.card import read_card

    card = read_card(out / "model.int8.cpu.onnx")
    assert card.calibration_sha256 == report["calibration"]["sha256"] and card.calibration_method == "minmax"
    # refuses to overwrite without --overwrite
    rc = main(["export", "--checkpoint", str(t.checkpoint), "--out", str(out)])
    assert rc == 2 and "--overwrite" in _err(capsys)


def test_accuracy_floor_fails_with_exit_2_and_keeps_the_report(t: Tiny, tmp_path, capsys) -> None:
    out = tmp_path / "exp"
    rc = main(["export", "--checkpoint", str(t.checkpoint), "--int8", "--out", str(out), "--calib-size", "16",
               "--min-cosine", "0.9999999"])
    err = _err(capsys)
    assert rc == 2 and "below the floor" in err and err.count("\n") == 0
    assert json.loads((out / "int8_report.json").read_text())["passed"] is False


def test_default_checkpoint_is_the_newest_in_runs_train(t: Tiny, tmp_path, monkeypatch) -> None:
    from reid_edge.deploy.exporter import newest_checkpoint

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "train"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"x")
    (run / "last.pt").write_bytes(b"y")
    now = time.time()
    os.utime(run / "best.pt", (now, now))
    os.utime(run / "last.pt", (now - 100, now - 100))
    assert newest_checkpoint() == Path("runs/train/best.pt")


# --- bad input: one-line errors, exit code 2 -------------------------------------------------

def test_missing_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in _err(capsys)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--int8"]) == 2
    assert "no checkpoint in runs/train" in _err(capsys)


def test_checkpoint_of_the_wrong_kind(tmp_path, capsys) -> None:
    import torch

    torch.save({"conv1.weight": torch.zeros(2, 3, 7, 7)}, tmp_path / "torchvision.pt")
    (tmp_path / "random.pt").write_bytes(os.urandom(256))
    for name in ("torchvision.pt", "random.pt"):
        rc = main(["export", "--checkpoint", str(tmp_path / name), "--out", str(tmp_path / f"o-{name}")])
        err = _err(capsys)
        assert rc == 2 and "not a" in err and "reid-edge checkpoint" in err, err


@pytest.mark.parametrize("args, message", [
    (["--int8", "--fp16"], "exclude each other"),
    (["--format", "engine"], "pip install"),
    (["--int8", "--opset", "11"], "opset 11"),
    (["--batch", "1,8,32", "--format", "onnx"], "needs --format engine"),
    (["--calib-method", "entropy"], "add --int8"),
    (["--int8", "--calib-method", "kl"], "unknown --calib-method"),
    (["--int8", "--calib-size", "4"], "minimum of 16"),
    (["--int8", "--eval-data", "/nonexistent/market"], "does not exist"),
])
def test_impossible_flags(t: Tiny, tmp_path, capsys, args, message) -> None:
    if "engine" in args:
        from reid_edge.deploy.capabilities import tensorrt_available

        if tensorrt_available():
            pytest.skip("TensorRT is installed here")
    rc = main(["export", "--checkpoint", str(t.checkpoint), "--out", str(tmp_path / "o"), *args])
    assert rc == 2 and message in _err(capsys)


def test_tiny_empty_or_unreadable_calibration_folders(t: Tiny, tmp_path, capsys) -> None:
    tiny_dir = tmp_path / "tiny"
    write_calib_images(tiny_dir, 3)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(16):
        (broken / f"{i}.jpg").write_text("not a jpeg")
    cases = [(tiny_dir, "has 3 images; INT8 calibration needs at least 16"),
             (empty, "has 0 images; INT8 calibration needs at least 16"),
             (broken, "cannot read calibration image"),
             (tmp_path / "absent", "does not exist")]
    for i, (folder, message) in enumerate(cases):
        rc = main(["export", "--checkpoint", str(t.checkpoint), "--int8", "--calib", str(folder),
                   "--out", str(tmp_path / f"o{i}")])
        assert rc == 2 and message in _err(capsys), folder


def test_checkpoint_without_calibration_images(t: Tiny, tmp_path, capsys) -> None:
    ckpt = save_tiny_checkpoint(tmp_path / "nocal.pt", t.model, t.card, [])
    rc = main(["export", "--checkpoint", str(ckpt), "--int8", "--out", str(tmp_path / "o")])
    assert rc == 2 and "records no calibration images" in _err(capsys)


def test_export_fp16_onnx(t: Tiny, tmp_path, capsys) -> None:
    out = tmp_path / "exp16"
    rc = main(["export", "--checkpoint", str(t.checkpoint), "--format", "onnx", "--fp16", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "fp16 graph: min cosine vs FP32" in printed
    from reid_edge.card import read_card

    assert read_card(out / "model.fp16.onnx").encoding == "fp16" and read_card(out / "model.onnx").encoding == "fp32"
