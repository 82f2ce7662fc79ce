"""Calibration sets, the two Q/DQ encodings, the TensorRT static check, calibration cache, report."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from reid_edge.card import INPUT_NAME, ModelCard
from reid_edge.errors import DataError, ExportError

from .test_export_support import Tiny, tiny, write_calib_images


@pytest.fixture(scope="session")
def t(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return tiny(tmp_path_factory)


# --- calibration set -------------------------------------------------------------------------

def test_too_few_images_says_how_many_are_needed(tmp_path) -> None:
    from reid_edge.calibration.calib_set import list_images, select_images

    write_calib_images(tmp_path, 5)
    with pytest.raises(DataError, match="at least 16"):
        select_images(list_images(tmp_path), 128)
    with pytest.raises(DataError, match="at least 16"):
        select_images([], 128)


def test_selection_is_deterministic_and_checks_missing_files(tmp_path) -> None:
    from reid_edge.calibration.calib_set import list_images, select_images

    write_calib_images(tmp_path, 20)
    paths = list_images(tmp_path)
    a, b = select_images(paths, 16), select_images(paths, 16)
    assert a == b and len(a) == 16 and a == sorted(a)
    with pytest.raises(DataError, match="missing"):
        select_images(paths + [tmp_path / "gone.jpg"], 16)
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nowhere")


def test_unreadable_image_is_a_one_line_data_error(tmp_path) -> None:
    from reid_edge.calibration.calib_set import load_calibration_array

    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="cannot read calibration image .*bad.jpg"):
        load_calibration_array([bad], ModelCard(backbone="resnet18", input_height=64, input_width=32))


def test_reader_uses_the_shared_preprocessing_and_batches(t: Tiny) -> None:
    from reid_edge.calibration.calib_set import (
        ArrayCalibrationReader,
        calibration_sha256,
        list_images,
        load_calibration_array,
        read_crops,
    )
    from reid_edge.preprocess import preprocess_for_card

    paths = list_images(t.calib_dir)[:5]
    arr = load_calibration_array(paths, t.fp32_card, chunk=2)
    np.testing.assert_array_equal(arr, preprocess_for_card(read_crops(paths), t.fp32_card))
    seen = []
    reader = ArrayCalibrationReader(arr, batch_size=2, on_batch=seen.append)
    batches = list(reader)
    assert [b[INPUT_NAME].shape[0] for b in batches] == [2, 2, 1] and seen == [2, 2, 1] and len(reader) == 3
    reader.rewind()
    assert reader.get_next() is not None
    assert calibration_sha256(arr) != calibration_sha256(arr[:4])


# --- quantization ----------------------------------------------------------------------------

def test_two_encodings_from_one_calibration(t: Tiny) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.calibration.quantize import check_trt_qdq
    from reid_edge.calibration.report import backend_agreement

    paths = t.int8()
    trt_model = onnx.load(str(paths["int8-qdq-trt"]))
    cpu_model = onnx.load(str(paths["int8-qdq-cpu"]))
    assert check_trt_qdq(trt_model) == []
    problems = check_trt_qdq(cpu_model)
    assert any("UINT8" in p for p in problems)  # QUInt8 activations: fine for ORT, not for TensorRT
    ref = OnnxRuntimeBackend(t.onnx, device="cpu")
    x = t.images(12, seed=7)
    for name, path in paths.items():
        backend = OnnxRuntimeBackend(path, device="cpu")
        assert backend.card.encoding == name and backend.card.precision == "int8"
        assert backend.card.extra["encoding_description"]
        agree = backend_agreement(ref, backend, x)
        assert agree["global"].mean() > 0.99, name
    # same calibration: identical activation scales for a tensor in both encodings
    def scales(model: onnx.ModelProto) -> dict[str, float]:
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        return {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
                if n.op_type == "QuantizeLinear" and n.input[0] == INPUT_NAME}

    s_trt, s_cpu = scales(trt_model), scales(cpu_model)
    assert s_trt and s_cpu
    # symmetric int8 uses amax/127, asymmetric uint8 (max-min)/255: both come from the same range
    assert s_trt[INPUT_NAME] * 127 >= s_cpu[INPUT_NAME] * 255 / 2 - 1e-6


def test_weights_of_trt_encoding_are_per_channel(t: Tiny) -> None:
    model = onnx.load(str(t.int8()["int8-qdq-trt"]))
    inits = {i.name: i for i in model.graph.initializer}
    conv_weights = 0
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4:
            scale = numpy_helper.to_array(inits[n.input[1]])
            assert scale.shape == (inits[n.input[0]].dims[0],)
            conv_weights += 1
    assert conv_weights >= 10


def _qdq_model(zero_point: np.ndarray, scale: np.ndarray, weight: bool) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    inits = [numpy_helper.from_array(scale.astype(np.float32), "s"), numpy_helper.from_array(zero_point, "zp")]
    if weight:
        inits.append(w)
    src = "w" if weight else "x"
    nodes = [helper.make_node("QuantizeLinear", [src, "s", "zp"], ["q"], name="q", axis=0),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq", axis=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3, 1, 1])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_static_check_on_hand_made_graphs() -> None:
    from reid_edge.calibration.quantize import check_trt_qdq

    ok_act = _qdq_model(np.array(0, np.int8), np.array(0.1), weight=False)
    assert check_trt_qdq(ok_act) == []
    ok_w = _qdq_model(np.zeros(4, np.int8), np.full(4, 0.1), weight=True)
    assert check_trt_qdq(ok_w) == []
    asym = check_trt_qdq(_qdq_model(np.array(3, np.int8), np.array(0.1), weight=False))
    assert any("not 0" in p for p in asym)
    unsigned = check_trt_qdq(_qdq_model(np.array(0, np.uint8), np.array(0.1), weight=False))
    assert any("UINT8" in p for p in unsigned)
    per_tensor_w = check_trt_qdq(_qdq_model(np.array(0, np.int8), np.array(0.1), weight=True))
    assert any("per channel" in p for p in per_tensor_w)
    old = _qdq_model(np.array(0, np.int8), np.array(0.1), weight=False)
    old.opset_import[0].version = 10
    assert any("opset" in p for p in check_trt_qdq(old))
    no_q = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]))
    assert any("not quantized" in p for p in check_trt_qdq(no_q))


def test_unknown_method_and_encoding(t: Tiny) -> None:
    from reid_edge.calibration.quantize import calibrate, quantize_encoding

    with pytest.raises(ExportError, match="unknown calibration method"):
        calibrate(t.onnx, t.images(2), "kl")
    with pytest.raises(ExportError, match="unknown INT8 encoding"):
        quantize_encoding(t.onnx, None, "int4", t.fp32_card)  # type: ignore[arg-type]


# --- TensorRT calibration cache --------------------------------------------------------------

def test_version_code_and_scale_hex() -> None:
    from reid_edge.calibration.cache import hex_to_scale, scale_to_hex, trt_version_code

    assert trt_version_code("10.3.0") == 100300
    assert trt_version_code("10.13.0.35") == 101300
    assert trt_version_code("8.6.1") == 8601
    assert scale_to_hex(1.0) == "3f800000" and scale_to_hex(0.5) == "3f000000"
    assert hex_to_scale("3f800000") == 1.0
    with pytest.raises(ExportError):
        trt_version_code("ten")


def test_cache_format_round_trip(tmp_path) -> None:
    from reid_edge.calibration.cache import format_calibration_cache, read_calibration_cache, write_calibration_cache

    text = format_calibration_cache({"images": 127.0, "onnx::Conv_3": 63.5}, "10.3.0")
    assert text.splitlines() == ["TRT-100300-EntropyCalibration2", "images: 3f800000", "onnx::Conv_3: 3f000000"]
    path = write_calibration_cache(tmp_path / "calibration.cache", {"a": 12.7}, "10.3.0")
    version, algo, scales = read_calibration_cache(path)
    assert (version, algo) == (100300, "EntropyCalibration2")
    assert scales["a"] == pytest.approx(0.1, rel=1e-6)
    (tmp_path / "bad.cache").write_text("hello\n")
    with pytest.raises(ExportError, match="bad header"):
        read_calibration_cache(tmp_path / "bad.cache")


def test_tensor_amax_is_symmetric() -> None:
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData

    from reid_edge.calibration.quantize import tensor_amax

    ranges = TensorsData(CalibrationMethod.MinMax, {"a": (np.float32(-3.0), np.float32(1.0)),
                                                    "b": (np.float32(0.0), np.float32(2.5))})
    assert tensor_amax(ranges) == {"a": 3.0, "b": 2.5}


# --- accuracy report -------------------------------------------------------------------------

def test_cosine_summary_hand_checked() -> None:
    from reid_edge.calibration.report import cosine_summary

    s = cosine_summary(np.array([1.0, 0.9, 0.8, 1.0]))
    assert s["mean"] == pytest.approx(0.925) and s["min"] == pytest.approx(0.8)
    assert 0.8 <= s["p1"] <= 0.81
    with pytest.raises(ExportError):
        cosine_summary(np.array([]))


def test_report_warns_fails_and_still_writes_json(t: Tiny, tmp_path) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.calibration.report import build_report, render_report, save_and_judge

    ref = OnnxRuntimeBackend(t.onnx, device="cpu")
    cpu = OnnxRuntimeBackend(t.int8()["int8-qdq-cpu"], device="cpu")
    x = t.images(8, seed=11)
    report = build_report(ref, {"int8-qdq-cpu": cpu}, x, "test crops", min_cosine=0.95)
    assert report["passed"] and report["crops"]["count"] == 8
    assert render_report(report).row_count == 1
    strict = build_report(ref, {"int8-qdq-cpu": cpu}, x, "test crops", warn_below=1.01, min_cosine=0.999999)
    assert not strict["passed"] and strict["failures"]
    path = tmp_path / "int8_report.json"
    with pytest.raises(ExportError, match="below the floor"):
        save_and_judge(strict, path)
    assert json.loads(path.read_text())["passed"] is False
    warn = build_report(ref, {"int8-qdq-cpu": cpu}, x, "test crops", warn_below=1.01, min_cosine=0.5)
    assert warn["passed"] and warn["warnings"]


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_give_symmetric_trt_encodings(t: Tiny, method: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.calibration.quantize import calibrate, check_trt_qdq, quantize_encoding, tensor_amax

    ranges = calibrate(t.onnx, t.images(4, seed=3), method, batch_size=2)
    assert capsys.readouterr().out == ""  # ORT's progress lines go to stderr, not where results go
    amax = tensor_amax(ranges)
    assert INPUT_NAME in amax and all(v >= 0 for v in amax.values())
    assert check_trt_qdq(quantize_encoding(t.onnx, ranges, "int8-qdq-trt", t.fp32_card)) == []
