"""TensorRT engine format, compatibility checks and build plan; real builds only where TensorRT imports."""

from __future__ import annotations

import json
import struct

import pytest

from reid_edge.card import ModelCard
from reid_edge.errors import BackendError, CheckpointError, ExportError

CARD = ModelCard(backbone="resnet50", encoding="int8-qdq-trt", precision="int8")


def _header(**changes):
    from reid_edge.artifacts import EngineHeader

    base = dict(card=CARD, tensorrt_version="10.3.0", compute_capability="8.7",
                profile={"min": 1, "opt": 8, "max": 32}, precision="int8", source_onnx="model.int8.trt.onnx")
    base.update(changes)
    return EngineHeader(**base)


def _real_tensorrt() -> bool:
    from reid_edge.deploy.capabilities import tensorrt_available

    return tensorrt_available()


def test_engine_file_layout_round_trip(tmp_path) -> None:
    from reid_edge.artifacts import ENGINE_MAGIC, pack_engine, read_engine_header
    from reid_edge.backends import ENGINE_MAGIC as REGISTRY_MAGIC
    from reid_edge.backends import detect_format

    assert ENGINE_MAGIC == REGISTRY_MAGIC
    blob = pack_engine(_header(), b"\x00ENGINE-BYTES")
    assert blob.startswith(ENGINE_MAGIC)
    (size,) = struct.unpack("<I", blob[len(ENGINE_MAGIC):len(ENGINE_MAGIC) + 4])
    meta = json.loads(blob[len(ENGINE_MAGIC) + 4:len(ENGINE_MAGIC) + 4 + size])
    assert meta["tensorrt_version"] == "10.3.0" and meta["card"]["encoding"] == "int8-qdq-trt"
    path = tmp_path / "model.engine"
    path.write_bytes(blob)
    assert detect_format(path) == "engine"
    header, offset = read_engine_header(path)
    assert header == _header() and blob[offset:] == b"\x00ENGINE-BYTES"


def test_bad_engine_files(tmp_path) -> None:
    from reid_edge.artifacts import ENGINE_MAGIC, pack_engine, read_engine_header

    (tmp_path / "a").write_bytes(b"something else")
    with pytest.raises(CheckpointError, match="not a reid-edge engine"):
        read_engine_header(tmp_path / "a")
    (tmp_path / "b").write_bytes(pack_engine(_header(), b"x")[:30])
    with pytest.raises(CheckpointError, match="truncated"):
        read_engine_header(tmp_path / "b")
    (tmp_path / "c").write_bytes(ENGINE_MAGIC + struct.pack("<I", 4) + b"{no}")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_engine_header(tmp_path / "c")
    (tmp_path / "d").write_bytes(ENGINE_MAGIC + struct.pack("<I", 2) + b"{}")
    with pytest.raises(CheckpointError, match="malformed"):
        read_engine_header(tmp_path / "d")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_engine_header(tmp_path / "missing")


def test_version_and_gpu_mismatch_say_how_to_rebuild() -> None:
    from reid_edge.backends.trt_backend import check_engine_compat

    header = _header()
    check_engine_compat(header, "10.3.0", "8.7")
    with pytest.raises(BackendError, match=r"TensorRT 10\.3\.0.*10\.13\.0.*rebuild.*--format engine --int8"):
        check_engine_compat(header, "10.13.0", "8.7")
    with pytest.raises(BackendError, match=r"compute capability 8\.7.*9\.0.*rebuild"):
        check_engine_compat(header, "10.3.0", "9.0")


def test_build_plan_by_tensorrt_version() -> None:
    from reid_edge.deploy.tensorrt_build import network_plan, tensorrt_major

    assert tensorrt_major("10.13.0.35") == 10 and tensorrt_major("11.0.0") == 11
    assert network_plan("fp16", 10) == (False, ["FP16"])
    assert network_plan("int8", 10) == (False, ["INT8"])
    assert network_plan("fp32", 10) == (False, [])
    assert network_plan("fp16", 11) == (True, []) and network_plan("int8", 11) == (True, [])
    with pytest.raises(ExportError):
        network_plan("int4", 10)


def test_timing_cache_location(monkeypatch, tmp_path) -> None:
    from reid_edge.deploy.tensorrt_build import default_timing_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_timing_cache("10.3.0", "8.7") == tmp_path / "reid-edge" / "trt-10.3.0-sm87.timing"


@pytest.mark.skipif(_real_tensorrt(), reason="TensorRT is installed here")
def test_engine_without_tensorrt_is_a_clear_error(tmp_path) -> None:
    from reid_edge.artifacts import pack_engine
    from reid_edge.backends import load_backend

    path = tmp_path / "model.engine"
    path.write_bytes(pack_engine(_header(), b"x"))
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        load_backend(path)
    with pytest.raises(BackendError, match="GPU only"):
        load_backend(path, device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not _real_tensorrt(), reason="needs TensorRT and a CUDA GPU (pip install 'reid-edge[tensorrt]')")
def test_build_and_run_engines_on_gpu(tmp_path_factory: pytest.TempPathFactory) -> None:
    import numpy as np
    import onnx

    from reid_edge.backends import load_backend
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.calibration.report import backend_agreement
    from reid_edge.card import read_card
    from reid_edge.deploy.export_onnx import convert_onnx_fp16, save_onnx
    from reid_edge.deploy.tensorrt_build import build_engine

    from .test_export_support import tiny

    t = tiny(tmp_path_factory)
    out = tmp_path_factory.mktemp("engines")
    fp16 = out / "model.fp16.onnx"
    save_onnx(convert_onnx_fp16(onnx.load(str(t.onnx))), fp16)
    import tensorrt

    major = int(tensorrt.__version__.split(".")[0])
    sources = {"fp32": t.onnx, "fp16": fp16 if major >= 11 else t.onnx, "int8": t.int8()["int8-qdq-trt"]}
    ref = OnnxRuntimeBackend(t.onnx, device="cpu")
    x = t.images(6)
    for precision, src in sources.items():
        path, header = build_engine(src, out / f"{precision}.engine", read_card(src), precision, (1, 4, 8),
                                    timing_cache=out / "timing.cache")
        assert (out / "timing.cache").is_file() and path.with_name(path.name + ".json").is_file()
        engine = load_backend(path, device="cuda")
        agree = backend_agreement(ref, engine, x, batch_size=4)
        assert float(np.mean(agree["global"])) > (0.999 if precision != "int8" else 0.99)
        engine.close()
