"""FP32 ONNX export, model card, parity gate and the FP16 graph conversion."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from reid_edge.card import CARD_KEY, INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES
from reid_edge.errors import CheckpointError, ExportError

from .test_export_support import EMBED, HEIGHT, STRIPES, WIDTH, Tiny, tiny


@pytest.fixture(scope="session")
def t(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return tiny(tmp_path_factory)


def test_onnx_is_checked_self_contained_and_describes_itself(t: Tiny) -> None:
    model = onnx.load(str(t.onnx))
    onnx.checker.check_model(model)
    assert not list(t.onnx.parent.glob("*.onnx.data"))
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outs == {OUTPUT_GLOBAL: ["batch", EMBED], OUTPUT_STRIPES: ["batch", STRIPES, EMBED // STRIPES]}
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    props = {p.key: p.value for p in model.metadata_props}
    assert CARD_KEY in props
    from reid_edge.card import read_card

    card = read_card(t.onnx)
    assert (card.input_height, card.input_width, card.encoding, card.opset) == (HEIGHT, WIDTH, "fp32", 17)
    assert card.source_checkpoint_sha256 and len(card.source_checkpoint_sha256) == 64
    assert "L2-normalized" in model.doc_string
    # Identity(initializer) nodes of the legacy exporter are folded into initializers
    inits = {i.name for i in model.graph.initializer}
    assert not [n for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits]


def test_dynamic_batch_and_unit_norm_outputs(t: Tiny) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(t.onnx, device="cpu")
    for n in (1, 3):
        out = backend.infer({INPUT_NAME: t.images(n)})
        assert out[OUTPUT_GLOBAL].shape == (n, EMBED)
        assert out[OUTPUT_STRIPES].shape == (n, STRIPES, EMBED // STRIPES)
        np.testing.assert_allclose(np.linalg.norm(out[OUTPUT_GLOBAL], axis=-1), 1.0, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(out[OUTPUT_STRIPES], axis=-1), 1.0, atol=1e-4)


def test_parity_gate_passes_for_the_exported_model(t: Tiny) -> None:
    from reid_edge.deploy.parity import parity_gate

    result = parity_gate(t.model, t.onnx, t.fp32_card)
    assert result.passed and result.min_cosine_global > 0.9999 and result.max_abs_diff < 1e-3


def test_parity_gate_fails_against_another_model(t: Tiny) -> None:
    import torch

    from reid_edge.deploy.parity import parity_gate
    from reid_edge.train.models import build_model

    torch.manual_seed(123)
    other = build_model("resnet18", num_stripes=STRIPES, embed_dim=EMBED).eval()
    with pytest.raises(ExportError, match="parity gate failed"):
        parity_gate(other, t.onnx, t.fp32_card)


def test_cosine_rows_hand_checked() -> None:
    from reid_edge.distance import cosine_rows

    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [0.0, 1.0])


def test_fp16_graph_runs_and_matches_fp32(t: Tiny, tmp_path) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.card import read_card
    from reid_edge.deploy.export_onnx import convert_onnx_fp16, save_onnx
    from reid_edge.distance import cosine_rows

    fp16 = convert_onnx_fp16(onnx.load(str(t.onnx)))
    path = tmp_path / "model.fp16.onnx"
    save_onnx(fp16, path)
    model = onnx.load(str(path))
    assert read_card(model).encoding == "fp16"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in model.graph.output)
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert {i.data_type for i in model.graph.initializer if i.name in conv_weights} == {onnx.TensorProto.FLOAT16}
    # the L2 normalization reads FP32 tensors
    typed = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in typed.graph.value_info}
    for node in model.graph.node:
        if node.op_type in ("ReduceL2", "Div"):
            assert types.get(node.input[0], onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT
    x = t.images(6)
    ref = OnnxRuntimeBackend(t.onnx, device="cpu").infer({INPUT_NAME: x})
    got = OnnxRuntimeBackend(path, device="cpu").infer({INPUT_NAME: x})
    assert cosine_rows(ref[OUTPUT_GLOBAL], got[OUTPUT_GLOBAL]).min() > 0.999
    assert cosine_rows(ref[OUTPUT_STRIPES], got[OUTPUT_STRIPES]).min() > 0.999


def test_read_card_rejects_onnx_without_card(tmp_path) -> None:
    from onnx import TensorProto, helper

    from reid_edge.card import read_card

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(CheckpointError, match="no reid-edge model card"):
        read_card(helper.make_model(graph))


def test_export_rejects_old_opset(t: Tiny, tmp_path) -> None:
    from reid_edge.deploy.export_onnx import export_onnx

    with pytest.raises(ExportError, match="opset 11"):
        export_onnx(t.model, t.card, tmp_path / "m.onnx", opset=11)


def test_export_rejects_card_that_does_not_fit_the_model(t: Tiny, tmp_path) -> None:
    from reid_edge.deploy.export_onnx import export_onnx

    with pytest.raises(ExportError, match="card"):
        export_onnx(t.model, t.card.replace(global_dim=EMBED * 2), tmp_path / "m.onnx")
