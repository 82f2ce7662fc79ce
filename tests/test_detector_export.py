"""The detector's INT8 path: one calibration on real footage, two Q/DQ encodings, the report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reid_edge.cli import main
from reid_edge.errors import ExportError


def test_split_frames_keeps_calibration_and_report_apart() -> None:
    from reid_edge.calibration.detector import split_frames

    cal, ev = split_frames(100, 10, 5, 0.5)
    assert len(cal) == 10 and cal.max() < 50 and len(ev) == 5 and ev.min() >= 50


def test_engine_size_is_checked_before_tensorrt() -> None:
    from reid_edge.deploy.detector_engine import build_detector_engine

    with pytest.raises(ExportError, match="multiples of 32"):
        build_detector_engine("x.onnx", "x.engine", (300, 416))


def test_cli_gt_count_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export-detector", "--videos", "a.mp4", "b.mp4", "--gt", "g.txt", "--out", str(tmp_path / "o")])
    assert rc == 2 and "one per video" in capsys.readouterr().err


def test_export_on_pets_frames(shared_data: Path, tmp_path: Path) -> None:
    import onnx

    from reid_edge.calibration.detector import DetectorExportConfig, export_detector
    from reid_edge.calibration.quantize import check_trt_qdq
    from reid_edge.pipeline.detectors import make_detector
    from reid_edge.pipeline.detectors.yolox import DETECTOR_META_KEY

    video = shared_data / "videos" / "pets2009_s2l1_view1.avi"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    cfg = DetectorExportConfig(videos=(str(video),), out=tmp_path, calib_frames=8, eval_frames=4, method="minmax")
    res = export_detector(cfg, log=lambda _: None)
    report = json.loads(res.files["report"].read_text())
    assert report["calibration_frames"] == 8 and report["held_out_frames"] == 4
    for enc in ("int8-qdq-cpu", "int8-qdq-trt"):
        model = onnx.load(str(res.files[enc]))
        meta = json.loads({p.key: p.value for p in model.metadata_props}[DETECTOR_META_KEY])
        assert meta["encoding"] == enc and meta["calibration_sha256"] == report["calibration_sha256"]
        assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 50
        assert 0.0 <= report["encodings"][enc]["vs_fp32"]["recall"] <= 1.0
    assert check_trt_qdq(onnx.load(str(res.files["int8-qdq-trt"]))) == []
    # both encodings keep the full-resolution convolutions (output stride <= 4: the stem and the first
    # stage, 9 of 113) and the SiLUs in float, and quantize every later convolution outside the head
    from reid_edge.calibration.detector import early_nodes, prepare_fp32
    from reid_edge.pipeline.detectors.yolox import default_yolox_path

    fp32, native = prepare_fp32(default_yolox_path())
    early = early_nodes(fp32, native)
    assert len(early) == 9 and early[0] == next(n.name for n in fp32.graph.node if n.op_type == "Conv")
    for enc in ("int8-qdq-cpu", "int8-qdq-trt"):
        model = onnx.load(str(res.files[enc]))
        producer = {o: n.op_type for n in model.graph.node for o in n.output}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        float_convs = [n.name for n in convs if producer.get(n.input[1]) != "DequantizeLinear"]
        assert float_convs[:9] == early and convs[9].name not in float_convs, enc
        silu = {n.input[1] for n in model.graph.node if n.op_type == "Mul" and producer.get(n.input[1]) == "Sigmoid"}
        quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
        assert len(silu) > 50 and not silu & quantized, enc  # SiLUs compute in float
    # the CPU encoding is a working detector (any input size, same conventions)
    det = make_detector(f"yolox:{res.files['int8-qdq-cpu']}", "cam", device="cpu")
    boxes = det.detect(np.full((360, 480, 3), 114, np.uint8), 1)
    assert boxes.shape[1] == 5
    assert report["encodings"]["int8-qdq-cpu"]["vs_fp32"]["recall"] >= 0.5, report["encodings"]
