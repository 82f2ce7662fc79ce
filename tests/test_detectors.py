"""Detectors: YOLO layouts through tiny hand-built ONNX models, NMS, motion blobs, HOG, MOT det files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_edge.errors import DataError, PipelineError
from reid_edge.pipeline.detectors import find_detection_file, letterbox, make_detector, nms
from reid_edge.pipeline.detectors.hog import HogDetector
from reid_edge.pipeline.detectors.motion import MotionDetector, merge_fragments
from reid_edge.pipeline.detectors.precomputed import PrecomputedDetector
from reid_edge.pipeline.detectors.yolo import YoloOnnxDetector, decode_yolo
from reid_edge.pipeline.motfile import read_mot_detections


def _const_model(path: Path, output: np.ndarray, size: int = 64) -> Path:
    """An ONNX model ``images [1,3,size,size] -> output`` that returns a fixed tensor (input used as x*0)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(output.astype(np.float32), "const")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "yolo_fixture",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[const, numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# Network-input coordinates (64x64). A 128x64 frame letterboxes with scale 0.5 and 16 px of
# padding on top and bottom, so the box cx=32, cy=32, w=16, h=32 is x=48, y=0, w=32, h=64 in the frame.
FRAME = np.zeros((64, 128, 3), np.uint8)
EXPECTED = np.array([48, 0, 32, 64], np.float32)


def test_yolo_v5_layout(tmp_path: Path) -> None:
    rows = np.array([
        [32, 32, 16, 32, 0.9, 0.95, 0.05],  # person
        [33, 32, 16, 32, 0.8, 0.90, 0.10],  # duplicate: removed by NMS
        [10, 10, 8, 8, 0.9, 0.10, 0.90],  # class 1: not a person
        [50, 40, 8, 16, 0.1, 0.90, 0.0],  # low objectness: below the threshold
    ])
    rows = np.concatenate([rows, np.zeros((12, 7))])[None]  # real models: many more boxes than channels
    det = YoloOnnxDetector(_const_model(tmp_path / "v5.onnx", rows), conf_thresh=0.3, device="cpu")
    out = det.detect(FRAME, 1)
    assert out.shape == (1, 5)
    np.testing.assert_allclose(out[0, :4], EXPECTED, atol=0.6)
    assert out[0, 4] == pytest.approx(0.9 * 0.95, abs=1e-5)


def test_yolo_v8_layout(tmp_path: Path) -> None:
    cols = np.array([
        [32, 32, 16, 32, 0.9, 0.1],
        [10, 10, 8, 8, 0.2, 0.8],  # class 1
        [50, 40, 8, 16, 0.35, 0.0],
    ])
    cols = np.concatenate([cols, np.zeros((12, 6))]).T[None]  # [1, 4+C, N]
    det = make_detector(f"yolo:{_const_model(tmp_path / 'v8.onnx', cols)}", "cam1", device="cpu")
    out = det.detect(FRAME, 1)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out[0, :4], EXPECTED, atol=0.6)
    assert out[0, 4] == pytest.approx(0.9)
    assert out[1, 4] == pytest.approx(0.35)


def test_decode_yolo_rejects_bad_shapes() -> None:
    with pytest.raises(PipelineError):
        decode_yolo(np.zeros((2, 10, 6)), 0.3)
    with pytest.raises(PipelineError):
        decode_yolo(np.zeros((1, 10, 5)), 0.3)


def test_yolo_missing_model(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="does not exist"):
        YoloOnnxDetector(tmp_path / "nope.onnx")


def test_letterbox_geometry() -> None:
    img, r, (px, py) = letterbox(np.zeros((100, 200, 3), np.uint8), (64, 64))
    assert img.shape == (64, 64, 3) and r == pytest.approx(0.32) and px == 0 and py == 16


def test_nms_keeps_best_of_overlapping() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]], float)
    keep = nms(boxes, np.array([0.5, 0.9, 0.7]), 0.3)
    assert keep.tolist() == [1, 2]


def test_merge_fragments_joins_body_parts_not_neighbours() -> None:
    head = [10, 0, 10, 10]
    legs = [8, 14, 14, 30]  # below the head, small gap
    other = [60, 0, 12, 40]  # a different person beside
    merged = merge_fragments(np.array([head, legs, other], float))
    assert len(merged) == 2
    np.testing.assert_allclose(sorted(merged.tolist()), [[8, 0, 14, 44], [60, 0, 12, 40]])


def test_motion_detector_finds_moving_box() -> None:
    det = MotionDetector(work_width=160)
    rng = np.random.default_rng(0)
    found = []
    for f in range(40):
        img = np.full((120, 160, 3), 90, np.uint8) + rng.integers(0, 4, (120, 160, 3), dtype=np.uint8)
        x = 10 + 3 * f
        cv2.rectangle(img, (x, 30), (x + 15, 30 + 45), (20, 200, 240), -1)
        out = det.detect(img, f + 1)
        if f > 20:
            found.append((out, x))
    hits = 0
    for out, x in found:
        if len(out) == 1 and abs(out[0, 0] - x) < 6 and abs(out[0, 3] - 46) < 8:
            hits += 1
    assert hits >= len(found) - 2


def test_hog_detector_runs_and_returns_rows() -> None:
    det = HogDetector(hog_width=160)
    out = det.detect(np.zeros((120, 160, 3), np.uint8), 1)
    assert out.dtype == np.float32 and out.shape[1] == 5 and len(out) == 0


def test_mot_detection_files(tmp_path: Path) -> None:
    (tmp_path / "cam1.det.txt").write_text(
        "1,-1,10,20,30,40,0.9,-1,-1,-1\n1,-1,1,2,3,4,0.5,-1,-1,-1\n3,-1,5,5,5,5,0.7\n")
    det = make_detector("motion", "cam1", detections_dir=tmp_path)
    assert isinstance(det, PrecomputedDetector)
    assert det.detect(FRAME, 1).shape == (2, 5)
    assert det.detect(FRAME, 2).shape == (0, 5)
    np.testing.assert_allclose(det.detect(FRAME, 3)[0], [5, 5, 5, 5, 0.7])
    with pytest.raises(PipelineError, match="cam2"):
        find_detection_file(tmp_path, "cam2")
    (tmp_path / "bad.txt").write_text("1,-1,x,2,3\n")
    with pytest.raises(DataError, match="bad.txt:1"):
        read_mot_detections(tmp_path / "bad.txt")


def test_unknown_detector() -> None:
    with pytest.raises(PipelineError, match="unknown detector"):
        make_detector("ssd", "cam1")
