"""The PyTorch and ONNX Runtime backends behind the one Backend protocol."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from reid_edge.card import INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES
from reid_edge.errors import BackendError, CheckpointError

from .test_export_support import EMBED, STRIPES, Tiny, tiny


@pytest.fixture(scope="session")
def t(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return tiny(tmp_path_factory)


def test_provider_choice() -> None:
    from reid_edge.backends.ort_backend import choose_providers

    cpu_only = ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(cpu_only, "auto") == cpu_only
    assert choose_providers(gpu, "auto") == gpu
    assert choose_providers(gpu, "cpu") == cpu_only
    assert choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda")[0] == "CUDAExecutionProvider"
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        choose_providers(cpu_only, "cuda")
    with pytest.raises(BackendError, match="unknown device"):
        choose_providers(cpu_only, "tpu")


def test_ort_backend_reads_card_and_uses_all_cores(t: Tiny) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(t.onnx, device="cpu")
    assert backend.card == t.fp32_card and backend.max_batch is None and backend.device == "cpu"
    assert backend.session.get_session_options().intra_op_num_threads == (os.cpu_count() or 1)
    one = OnnxRuntimeBackend(t.onnx, device="cpu", intra_op_threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1


def test_all_formats_agree_through_load_backend(t: Tiny) -> None:
    from reid_edge.backends import detect_format, load_backend
    from reid_edge.distance import cosine_rows

    assert detect_format(t.checkpoint) == "checkpoint" and detect_format(t.onnx) == "onnx"
    torch_b = load_backend(t.checkpoint, device="cpu")
    ort_b = load_backend(t.onnx, device="cpu")
    assert torch_b.name == "pytorch" and ort_b.name == "onnxruntime"
    crops = t.crops(5)
    a, b = torch_b.embed(crops, batch_size=2), ort_b.embed(crops, batch_size=4)
    assert a.global_.shape == (5, EMBED) and a.stripes.shape == (5, STRIPES, EMBED // STRIPES)
    assert cosine_rows(a.global_, b.global_).min() > 0.9999
    assert cosine_rows(a.stripes, b.stripes).min() > 0.9999


def test_infer_validates_input(t: Tiny) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(t.onnx, device="cpu")
    x = t.images(2)
    with pytest.raises(BackendError, match="shape"):
        backend.infer({INPUT_NAME: x[:, :, :10]})
    with pytest.raises(BackendError, match="float32"):
        backend.infer({INPUT_NAME: x.astype(np.float64)})
    with pytest.raises(BackendError, match="expected exactly the input"):
        backend.infer({"input": x})
    out = backend.infer({INPUT_NAME: x})
    assert set(out) == {OUTPUT_GLOBAL, OUTPUT_STRIPES}


def test_onnx_without_card_or_unreadable(tmp_path) -> None:
    from onnx import TensorProto, helper

    from reid_edge.backends.ort_backend import OnnxRuntimeBackend

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["embedding"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1])])
    path = tmp_path / "nocard.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(CheckpointError, match="no reid-edge model card"):
        OnnxRuntimeBackend(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")


def test_torch_backend_rejects_wrong_checkpoints(tmp_path) -> None:
    import torch

    from reid_edge.backends.torch_backend import TorchBackend

    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "tv.pt")
    with pytest.raises(CheckpointError, match="not a reid-edge checkpoint"):
        TorchBackend(tmp_path / "tv.pt", device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        TorchBackend(tmp_path / "missing.pt", device="cpu")


def test_torch_device_resolution() -> None:
    import torch

    from reid_edge.backends.torch_backend import resolve_torch_device

    assert resolve_torch_device("cpu") == "cpu"
    assert resolve_torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(BackendError):
        resolve_torch_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="no CUDA"):
            resolve_torch_device("cuda")
    else:
        assert resolve_torch_device("cuda", local_rank=1) == "cuda:1"
    assert resolve_torch_device("cpu", local_rank=1) == "cpu"


def test_backends_are_context_managers_that_close_their_session(t: Tiny) -> None:
    from reid_edge.backends import load_backend

    with load_backend(t.onnx, device="cpu") as backend:
        assert backend.embed_array(t.images(2)).global_.shape == (2, EMBED)
    assert backend.session is None  # type: ignore[attr-defined]
    with load_backend(t.checkpoint, device="cpu") as torch_backend:
        assert torch_backend.model is not None  # type: ignore[attr-defined]
    assert torch_backend.model is None  # type: ignore[attr-defined]


def test_torch_backend_from_model_matches_the_checkpoint_and_keeps_train_mode(t: Tiny) -> None:
    from reid_edge.backends.torch_backend import TorchBackend

    images = t.images(3)
    with TorchBackend(t.checkpoint, device="cpu") as from_file:
        want = from_file.infer({INPUT_NAME: images})
    t.model.train()
    try:
        got = TorchBackend.from_model(t.model, t.card, "cpu").infer({INPUT_NAME: images})
        assert t.model.training  # restored after the call
    finally:
        t.model.eval()
    np.testing.assert_allclose(got[OUTPUT_GLOBAL], want[OUTPUT_GLOBAL], atol=1e-5)
    np.testing.assert_allclose(got[OUTPUT_STRIPES], want[OUTPUT_STRIPES], atol=1e-5)


def test_tensorrt_ep_options_follow_the_card(t: Tiny) -> None:
    from reid_edge.backends.ort_backend import tensorrt_ep_options

    fp32 = tensorrt_ep_options(t.onnx)
    assert fp32["trt_engine_cache_enable"] and not fp32["trt_int8_enable"] and not fp32["trt_fp16_enable"]
    assert tensorrt_ep_options(t.int8()["int8-qdq-trt"])["trt_int8_enable"]
