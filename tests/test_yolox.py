"""YOLOX: grid decode against hand-computed boxes, the packaged model on real PETS frames against a
plain reference decode (SOURCES.md conventions), the flexible input size, device errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from reid_edge.errors import BackendError, PipelineError
from reid_edge.pipeline.detectors import make_detector, nms
from reid_edge.pipeline.detectors.yolox import (
    YoloxDetector,
    decode_yolox,
    default_yolox_path,
    flexible_yolox,
    network_size,
    yolox_grid,
)
from reid_edge.pipeline.motfile import read_mot_tracks

YOLOX_SHA256 = "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d"


def test_grid_order_and_hand_decoded_boxes() -> None:
    grid, strides = yolox_grid((64, 96))  # 8x12 + 4x6 + 2x3 points
    assert len(grid) == 96 + 24 + 6 and strides[0, 0] == 8 and strides[96, 0] == 16 and strides[-1, 0] == 32
    np.testing.assert_array_equal(grid[13], [1, 1])  # row-major: index 13 = (x 1, y 1) on a 12-wide grid
    out = np.zeros((len(grid), 7), np.float32)
    i8 = 2 * 12 + 3  # stride 8, cell x=3, y=2
    out[i8, :4] = [0.5, 0.25, np.log(2.0), np.log(4.0)]
    out[i8, 4:] = [0.9, 0.8, 0.1]  # objectness, person, other class
    i16 = 96 + 1 * 6 + 4  # stride 16, cell x=4, y=1
    out[i16, :4] = [0.0, 0.0, 0.0, np.log(3.0)]
    out[i16, 4:] = [0.5, 0.4, 0.0]
    out[5, 4:] = [0.9, 0.05, 0.95]  # a confident non-person: person score 0.045
    boxes, scores = decode_yolox(out[None], grid, strides, conf_thresh=0.1)
    # cx = (0.5 + 3) * 8 = 28, cy = (0.25 + 2) * 8 = 18, w = 2 * 8, h = 4 * 8
    np.testing.assert_allclose(boxes, [[20, 2, 16, 32], [56, -8, 16, 48]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.72, 0.2], atol=1e-6)
    with pytest.raises(PipelineError, match="grid"):
        decode_yolox(out[:-1], grid, strides, 0.1)


def test_network_size_keeps_scale_and_stride() -> None:
    assert network_size((360, 480), (416, 416)) == (320, 416)  # PETS: 312 rows -> 320
    assert network_size((320, 576), (416, 416)) == (256, 416)  # 16:9 streams: 40% less than 416x416
    assert network_size((416, 416), (416, 416)) == (416, 416)


def test_packaged_model_and_licence() -> None:
    path = default_yolox_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YOLOX_SHA256
    assert (path.parent / "LICENSE-yolox_nano.txt").read_text().lstrip().startswith("Apache License")
    assert "yolox_nano.onnx" in (path.parent / "NOTICE.md").read_text()


def test_flexible_model_matches_the_original_at_its_size() -> None:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(default_yolox_path()))
    flex, native = flexible_yolox(model)
    assert native == (416, 416)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    a = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    s = ort.InferenceSession(flex.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(s.run(None, {"images": x})[0], a, atol=1e-4)
    two = s.run(None, {"images": np.concatenate([x[:, :, :256], x[:, :, :256]])})[0]
    assert two.shape == (2, (32 * 52 + 16 * 26 + 8 * 13), 85)


def _reference_decode(out: np.ndarray, size: tuple[int, int], conf: float) -> tuple[np.ndarray, np.ndarray]:
    """SOURCES.md's decode, written plainly: loops over strides and cells."""
    boxes, scores = [], []
    k = 0
    for s in (8, 16, 32):
        for gy in range(size[0] // s):
            for gx in range(size[1] // s):
                p = out[0, k]
                k += 1
                score = p[4] * p[5]
                if score < conf:
                    continue
                cx, cy = (p[0] + gx) * s, (p[1] + gy) * s
                w, h = np.exp(p[2]) * s, np.exp(p[3]) * s
                boxes.append([cx - w / 2, cy - h / 2, w, h])
                scores.append(score)
    return np.array(boxes).reshape(-1, 4), np.array(scores)


def _pets_frames(shared_data: Path, frames: tuple[int, ...]) -> list[np.ndarray]:
    import cv2

    video = shared_data / "videos" / "pets2009_s2l1_view1.avi"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    cap = cv2.VideoCapture(str(video))
    out, i = [], 0
    while len(out) < len(frames):
        ok, img = cap.read()
        if not ok:
            break
        i += 1
        if i in frames:
            out.append(img)
    cap.release()
    return out


def test_real_frames_match_reference_decode_and_ground_truth(shared_data: Path) -> None:
    from reid_edge.pipeline.detectors.base import letterbox, to_frame_boxes
    from reid_edge.pipeline.tracker import iou_matrix

    frames = (1, 100, 200)
    images = _pets_frames(shared_data, frames)
    gt = read_mot_tracks(shared_data / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt", is_gt=True, scale=480 / 768)
    det = YoloxDetector(device="cpu")
    hits = total = 0
    for f, img in zip(frames, images):
        ours = det.detect(img, f)
        # the reference: the shipped model at its own 416x416 input, top-left letterbox, plain decode
        ref_in, r, pad = letterbox(img, (416, 416), centre=False)
        out = det.session.run(None, {"images": ref_in.transpose(2, 0, 1)[None].astype(np.float32)})[0]
        boxes, scores = _reference_decode(out, (416, 416), det.conf_thresh)
        keep = nms(boxes, scores, det.iou_thresh)
        ref = to_frame_boxes(boxes[keep], scores[keep], r, pad, img.shape)
        confident_ref, confident = ref[ref[:, 4] >= 0.5], ours[ours[:, 4] >= 0.5]
        assert abs(len(confident_ref) - len(confident)) <= 1, (f, len(confident_ref), len(confident))
        iou = iou_matrix(confident_ref[:, :4], confident[:, :4])
        assert (iou.max(axis=1) > 0.8).mean() >= 0.9, f  # 320x416 input finds the same people
        g = gt[f][1]
        hits += int((iou_matrix(g, confident[:, :4]).max(axis=1) >= 0.5).sum())
        total += len(g)
    assert hits / total >= 0.8, f"recall {hits}/{total} at score >= 0.5"


def test_device_cuda_without_gpu_is_an_error() -> None:
    import onnxruntime as ort

    if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers()):
        pytest.skip("this onnxruntime has a GPU provider")
    with pytest.raises(BackendError, match="cuda"):
        make_detector("yolox", "cam1", device="cuda")
    with pytest.raises(PipelineError, match="does not exist"):
        make_detector("yolox:/nonexistent/model.onnx", "cam1", device="cpu")


def test_sessions_do_not_spin_wait() -> None:
    """A two-camera run holds three ONNX Runtime sessions on the same cores; spin-waiting pools
    starved each other (two real clips on 2 cores: 13.3 vs 24.9 frames/s per camera)."""
    from reid_edge.backends import load_backend
    from reid_edge.models import resolve

    key = "session.intra_op.allow_spinning"
    with load_backend(resolve(None), device="cpu") as backend:
        assert backend.session.get_session_options().get_session_config_entry(key) == "0"  # type: ignore[attr-defined]
    detector = YoloxDetector(device="cpu")
    assert detector.session.get_session_options().get_session_config_entry(key) == "0"


@pytest.mark.parametrize("spec, input_shape", [
    ("yolox", (1, 3, 320, 416)),  # the model's own 416 on the long side
    ("yolox@480", (1, 3, 384, 480)),
    ("yolox@640", (1, 3, 480, 640)),
])
def test_input_size_spelling_sets_the_network_long_side(spec: str, input_shape: tuple[int, ...]) -> None:
    frame = np.full((360, 480, 3), 90, np.uint8)
    det = make_detector(spec, "cam1", device="cpu")
    x, r, _ = det.preprocess(frame)  # type: ignore[attr-defined]
    assert x.shape == input_shape and r == pytest.approx(input_shape[3] / 480)
    assert det.detect(frame, 1).shape[1] == 5


def test_input_size_with_a_path_and_bad_sizes(tmp_path: Path) -> None:
    from reid_edge.pipeline.detectors import split_input_size

    assert split_input_size(":m.onnx@640") == (":m.onnx", 640)
    assert split_input_size("@480") == ("", 480)
    assert split_input_size(":/data/a@b/m.onnx") == (":/data/a@b/m.onnx", None)  # '@' inside a path
    odd = tmp_path / "at@home"
    odd.mkdir()
    copy = odd / "nano.onnx"
    copy.write_bytes(default_yolox_path().read_bytes())
    assert make_detector(f"yolox:{copy}@448", "cam1", device="cpu").native == (448, 448)  # type: ignore[attr-defined]
    assert make_detector(f"yolox:{copy}", "cam1", device="cpu").native == (416, 416)  # type: ignore[attr-defined]
    for bad in ("yolox@600", "yolox@0", "yolox@big", "yolox@"):
        with pytest.raises(PipelineError, match="input size"):
            make_detector(bad, "cam1", device="cpu")
