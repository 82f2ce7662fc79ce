"""Checkpoint -> self-contained FP32 ONNX with the model card in ``metadata_props``.

Graph contract (documented in the card and the README):

- input ``images``: float32 ``[B, 3, H, W]``, dynamic batch, preprocessed by
  :func:`reid_edge.preprocess.preprocess_for_card`;
- output ``embedding``: float32 ``[B, global_dim]``, L2-normalized global embedding;
- output ``stripes``: float32 ``[B, num_stripes, stripe_dim]``, each stripe L2-normalized.

The legacy TorchScript exporter (``dynamo=False``) is used on purpose: it exists on every
PyTorch from 2.4 to 2.13 and writes a single file (the dynamo exporter of 2.13 would put the
weights in a separate ``.onnx.data`` file by default).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.card import (
    INPUT_NAME,
    OUTPUT_GLOBAL,
    OUTPUT_STRIPES,
    ModelCard,
    read_card,
    set_card,
    sha256_file,
)
from reid_edge.errors import CheckpointError, ExportError
from reid_edge.io import atomic_write_bytes

from .capabilities import DEFAULT_OPSET, MIN_OPSET

if TYPE_CHECKING:
    import onnx
    import torch


# Ops that run in FP16 in the FP16 graph; everything else (L2 norm: ReduceL2, Clip, Expand, Div,
# Sqrt, Pow, ...; casts; constants) stays FP32, so the normalization cannot overflow in half precision.
FP16_OPS = frozenset({
    "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Mul",
    "Gemm", "MatMul", "BatchNormalization", "Flatten", "Reshape", "Concat", "Split", "Slice",
    "Transpose", "Squeeze", "Unsqueeze", "Identity", "ReduceMean", "ReduceMax", "Sigmoid",
    "HardSigmoid", "HardSwish",
})


def load_checkpoint_model(path: str | Path) -> tuple[torch.nn.Module, ModelCard, dict[str, Any]]:
    """Load a reid-edge training checkpoint as ``(model in eval mode, card, checkpoint dict)``.

    Raises:
        CheckpointError: missing file, or not a reid-edge checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist (train one with `reid-edge train` or pass --checkpoint)")
    from reid_edge.train.checkpoint import load_model

    return load_model(p, map_location="cpu")


def card_for_onnx(card: ModelCard, opset: int, checkpoint: str | Path | None = None) -> ModelCard:
    """The FP32 ONNX card: precision/encoding fp32, opset, and the source checkpoint hash."""
    changes: dict[str, Any] = {"precision": "fp32", "encoding": "fp32", "opset": opset,
                               "calibration_sha256": None, "calibration_method": None}
    if checkpoint is not None:
        changes["source_checkpoint_sha256"] = sha256_file(checkpoint)
    return card.replace(**changes)


def export_onnx(
    model: torch.nn.Module,
    card: ModelCard,
    out: str | Path,
    opset: int = DEFAULT_OPSET,
    checkpoint: str | Path | None = None,
) -> tuple[Path, ModelCard]:
    """Export ``model`` (``x -> (global, stripes)``) to a single ONNX file with its card.

    Args:
        model: the re-identification network; put in eval mode here.
        card: the checkpoint's card (input size, normalization, embedding layout).
        out: destination ``.onnx`` path, written atomically.
        opset: ONNX opset (>= 13).
        checkpoint: source checkpoint, hashed into the card when given.
    Returns:
        ``(path, card written into the file)``.
    Raises:
        ExportError: export or ``onnx.checker`` failure, or unexpected output shapes.
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: reid-edge exports need opset >= {MIN_OPSET}")
    onnx_card = card_for_onnx(card, opset, checkpoint)
    model = model.eval()
    example = torch.zeros(2, 3, card.input_height, card.input_width)
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if "dynamo" in torch.onnx.export.__code__.co_varnames:  # torch >= 2.5 knows the flag
        kwargs["dynamo"] = False
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), buf,  # type: ignore[arg-type]  # a file object works; the stubs say path only
                input_names=[INPUT_NAME], output_names=[OUTPUT_GLOBAL, OUTPUT_STRIPES],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_GLOBAL: {0: "batch"}, OUTPUT_STRIPES: {0: "batch"}},
                opset_version=opset, do_constant_folding=True, **kwargs,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    proto = onnx.load_model_from_string(buf.getvalue())
    fold_initializer_identities(proto)
    _check_io(proto, onnx_card)
    set_card(proto, onnx_card)
    save_onnx(proto, out)
    return Path(out), onnx_card


def fold_initializer_identities(proto: onnx.ModelProto) -> int:
    """Replace ``Identity(initializer)`` nodes by initializers of their own; returns how many.

    The legacy exporter deduplicates equal initializers (e.g. zero biases) behind Identity nodes;
    a quantizer then sees those weights as activations and quantizes them per tensor.
    """
    inits = {t.name: t for t in proto.graph.initializer}
    graph_outputs = {o.name for o in proto.graph.output}
    keep, added = [], []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in graph_outputs:
            copy = type(inits[node.input[0]])()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            added.append(copy)
        else:
            keep.append(node)
    if added:
        del proto.graph.node[:]
        proto.graph.node.extend(keep)
        proto.graph.initializer.extend(added)
        used = {i for n in keep for i in n.input} | graph_outputs
        unused = [t for t in proto.graph.initializer if t.name not in used]
        for t in unused:
            proto.graph.initializer.remove(t)
    return len(added)


def _check_io(proto: onnx.ModelProto, card: ModelCard) -> None:
    """Check the output ranks, then write the card's static sizes into the declared shapes.

    The legacy exporter leaves symbolic names for sizes computed by reshapes; stating them makes the
    graph self-describing (the parity gate checks the actual shapes against the card).
    """
    want = {OUTPUT_GLOBAL: [card.global_dim], OUTPUT_STRIPES: [card.num_stripes, card.stripe_dim]}
    outs = {o.name: o for o in proto.graph.output}
    for name, sizes in want.items():
        out = outs.get(name)
        if out is None:
            raise ExportError(f"exported graph has no output '{name}'")
        dims = out.type.tensor_type.shape.dim
        if len(dims) != 1 + len(sizes):
            raise ExportError(f"exported output '{name}' has rank {len(dims)}, expected {1 + len(sizes)}")
        for dim, size in zip(list(dims)[1:], sizes):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise ExportError(f"exported output '{name}' has size {dim.dim_value} where the card says {size}; "
                                  "does the checkpoint's card match its model?")
            dim.dim_value = size


def save_onnx(proto: onnx.ModelProto, out: str | Path) -> None:
    """``onnx.checker`` then an atomic single-file write.

    Raises:
        ExportError: the checker rejects the model.
    """
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=False)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected {Path(out).name}: {str(exc).splitlines()[0]}") from None
    atomic_write_bytes(out, proto.SerializeToString())


def convert_onnx_fp16(fp32: onnx.ModelProto, keep_fp32_ops: frozenset[str] | None = None) -> onnx.ModelProto:
    """Convert an FP32 graph to FP16 for strongly typed runtimes (TensorRT 11 FP16 engines).

    Nodes whose type is in :data:`FP16_OPS` compute in FP16 (their float initializers are converted);
    every other node (the L2 normalization: ReduceL2/Clip/Expand/Div, casts, ...) stays FP32. A Cast
    is inserted on every edge whose producer and consumer disagree; the graph input and outputs keep
    FP32, so the I/O contract does not change.

    Args:
        fp32: a model from :func:`export_onnx` (not modified).
        keep_fp32_ops: op types forced to FP32 in addition to those outside :data:`FP16_OPS`.
    Returns:
        The FP16 model, card updated to ``precision/encoding = fp16``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    keep = keep_fp32_ops or frozenset()
    model = onnx.shape_inference.infer_shapes(fp32)
    graph = model.graph
    elem: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        elem[vi.name] = vi.type.tensor_type.elem_type
    inits = {t.name: t for t in graph.initializer}
    for t in graph.initializer:
        elem[t.name] = t.data_type

    def is_float(name: str) -> bool:
        return elem.get(name) == TensorProto.FLOAT

    nodes = []
    for n in graph.node:  # detached copies: the graph's node list is rebuilt below
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        nodes.append(copy)
    half = [n.op_type in FP16_OPS and n.op_type not in keep and n.domain == "" for n in nodes]
    # outputs of FP16 nodes become FP16 tensors
    produced_half = {o for n, h in zip(nodes, half) if h for o in n.output if is_float(o)}

    new_inits: list[onnx.TensorProto] = []
    converted_inits: dict[str, str] = {}
    cast_cache: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in cast_cache:
            suffix = "fp16" if to == TensorProto.FLOAT16 else "fp32"
            out = f"{name}__{suffix}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=f"Cast_{out}"))
            cast_cache[key] = out
        return cast_cache[key]

    for node, node_half in zip(nodes, half):
        if node.op_type == "Shape":  # reads only the shape: any dtype will do
            new_nodes.append(node)
            continue
        for idx, name in enumerate(node.input):
            if not name or not is_float(name):
                continue
            if node_half:
                if name in inits:
                    if name not in converted_inits:
                        arr = numpy_helper.to_array(inits[name]).astype(np.float16)
                        new_name = f"{name}__fp16"
                        new_inits.append(numpy_helper.from_array(arr, new_name))
                        converted_inits[name] = new_name
                    node.input[idx] = converted_inits[name]
                elif name not in produced_half:
                    node.input[idx] = cast(name, TensorProto.FLOAT16)
            elif name in produced_half:
                node.input[idx] = cast(name, TensorProto.FLOAT)
        new_nodes.append(node)

    graph_outputs = {o.name for o in graph.output}
    for name in graph_outputs & produced_half:
        # the producer writes <name>__half, a final Cast writes the FP32 graph output
        half_name = f"{name}__half"
        for n in new_nodes:
            for k, o in enumerate(n.output):
                if o == name:
                    n.output[k] = half_name
            for k, i in enumerate(n.input):
                if i == name:
                    n.input[k] = half_name
        new_nodes.append(helper.make_node("Cast", [half_name], [name], to=TensorProto.FLOAT, name=f"Cast_{name}_out"))

    # Casts must precede their consumers: order the node list topologically.
    ordered = _topological(new_nodes, {i.name for i in graph.input} | set(inits) | {t.name for t in new_inits})
    del graph.node[:]
    graph.node.extend(ordered)
    used = {i for n in ordered for i in n.input}
    keep_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits + [t for t in new_inits if t.name in used])
    # value_info types are stale after the conversion; let shape inference redo them
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    try:
        card = read_card(model)
        set_card(model, card.replace(precision="fp16", encoding="fp16"))
    except CheckpointError:
        pass
    return model


def _topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    ready = set(available) | {""}
    pending = list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progressed = False
        rest: list[onnx.NodeProto] = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
                progressed = True
            else:
                rest.append(n)
        if not progressed:
            missing = sorted({i for n in rest for i in n.input if i not in ready})[:3]
            raise ExportError(f"FP16 conversion left a dangling graph (inputs {missing} are never produced)")
        pending = rest
    return ordered
