"""Bring a third-party re-identification ONNX into the project's graph contract, with a model card.

A foreign model (e.g. Intel Open Model Zoo person-reidentification-retail-0288) has its own
input name, batch handling, pixel format and an unnormalized embedding. :func:`import_onnx`
rewrites it so that every reid-edge consumer (backends, ``eval``, ``bench``, ``run``,
``export --int8``, engine builds) can use it without knowing where it came from:

- the single image input is renamed ``images`` with a dynamic batch dimension;
- weights stored as ``Constant`` nodes become graph initializers (quantizers only quantize
  initializers, and TensorRT refits and tools expect them there), and ONNX Runtime's basic,
  semantics-preserving rewrites fold per-channel Adds into Conv biases (:func:`optimize_basic`);
- the chosen output is flattened and L2-normalized into ``embedding`` ``[B, D]`` (cosine distance
  on the original output is Euclidean distance on the normalized one); the model is global-only
  (card ``num_stripes = 0``, no ``stripes`` output);
- the model card states input size, channel order and normalization (``inside``: the graph takes
  raw 0-255 pixels), provenance and licence.

The rewrite is checked numerically: ONNX Runtime outputs of the imported model must equal the
normalized outputs of the original (cosine >= 0.99999) for a batch of 3, row by row against
batch-1 runs, so a batch size baked into a reshape is caught here, not in the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.card import IMAGENET_MEAN, IMAGENET_STD, INPUT_NAME, OUTPUT_GLOBAL, ModelCard, sha256_file
from reid_edge.distance import unit_rows
from reid_edge.errors import CheckpointError, ConfigError, ExportError

if TYPE_CHECKING:
    import onnx

# --normalize choices -> (mean, std) applied after scaling pixels to [0, 1] (reid_edge.preprocess)
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    # the graph normalizes itself and takes 0-255 pixels: (x/255 - 0) / (1/255) == x
    "inside": ((0.0, 0.0, 0.0), (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)),
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # [0, 1] pixels, no normalization
}
IMPORT_MIN_COSINE = 0.99999
_PREFIX = "reid_edge_import/"


@dataclass(frozen=True)
class ImportSpec:
    """How to read a foreign model, and what to record about it.

    Args:
        name: the card's ``backbone`` (how the model is named in reports), e.g. ``intel-0288``.
        input_size: ``(height, width)``; None reads it from the graph (an error when it is symbolic).
        channel_order: ``RGB`` or ``BGR``, what the model expects.
        normalize: a key of :data:`NORMALIZATIONS`; ignored when ``mean`` and ``std`` are given.
        mean, std: per-channel values applied to [0, 1] pixels (both or neither).
        output: the output holding the embedding; None: the model's only output.
        source, license: provenance and terms, stored in the card's ``extra``.
        match_gate: the cross-camera gate for this model (card ``match_gate``).
        track_gate: the tracker's appearance gate at crossings for this model (card ``track_gate``).
        same_camera_gate: the association's gate for re-links within one camera (card ``same_camera_gate``).
        notes: further ``extra`` entries (e.g. how the source file was converted).
    """

    name: str
    input_size: tuple[int, int] | None = None
    channel_order: str = "RGB"
    normalize: str = "imagenet"
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    output: str | None = None
    source: str = ""
    license: str = ""
    match_gate: float | None = None
    track_gate: float | None = None
    same_camera_gate: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("the imported model needs a --name")
        if self.channel_order.upper() not in ("RGB", "BGR"):
            raise ConfigError(f"channel order {self.channel_order!r} is not RGB or BGR")
        if (self.mean is None) != (self.std is None):
            raise ConfigError("give both --mean and --std, or neither")
        if self.mean is None and self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"--normalize {self.normalize!r} is not one of {', '.join(NORMALIZATIONS)}")
        if self.std is not None and any(v <= 0 for v in self.std):
            raise ConfigError("--std values must be > 0")
        if self.input_size is not None and min(self.input_size) < 8:
            raise ConfigError(f"input size {self.input_size} is too small")
        for what, gate in (("match", self.match_gate), ("track", self.track_gate),
                           ("same-camera", self.same_camera_gate)):
            if gate is not None and not 0 < gate <= 2:
                raise ConfigError(f"the {what} gate is a distance between unit vectors: 0 < gate <= 2")

    def mean_std(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        return NORMALIZATIONS[self.normalize]


def parse_size(text: str) -> tuple[int, int]:
    """``"256x128"`` -> ``(256, 128)`` (height x width).

    Raises:
        ConfigError: not two positive integers.
    """
    parts = text.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"input size {text!r} is not HEIGHTxWIDTH, e.g. 256x128") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"input size {text!r} must be positive")
    return h, w


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """``"0.5,0.5,0.5"`` -> a 3-tuple of floats."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not three comma-separated numbers") from None
    if len(values) != 3:
        raise ConfigError(f"{what} {text!r} needs exactly three values (one per channel)")
    return values  # type: ignore[return-value]


def _dims(value_info: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim]


def _opset(proto: onnx.ModelProto) -> int:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise CheckpointError("the ONNX model imports no default-domain opset")


def constants_to_initializers(proto: onnx.ModelProto) -> int:
    """Turn top-level ``Constant`` nodes holding a tensor into initializers; returns how many."""
    from onnx import numpy_helper

    keep, moved = [], 0
    for node in proto.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and set(attrs) == {"value"}:
            tensor = numpy_helper.from_array(numpy_helper.to_array(attrs["value"].t), node.output[0])
            proto.graph.initializer.append(tensor)
            moved += 1
        else:
            keep.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(keep)
    return moved


def optimize_basic(proto: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's basic, semantics-preserving graph rewrites, saved as plain ONNX.

    The basic level folds constants and fuses Conv+Add (bias), Conv+Mul, Conv+BatchNorm and
    MatMul+Add into standard ONNX ops only (the extended levels would write ORT-only ops). Converted
    models often carry every folded BatchNorm as a separate per-channel Add after a bias-less Conv;
    as a Conv bias it is quantized with the Conv (one QLinearConv on CPU) instead of staying a float
    Add between a quantized Conv and its activation.
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="reid-edge-import.") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        out = onnx.load(opts.optimized_model_filepath)
    # the saved model declares every domain ORT knows; keep those the graph uses
    used = {n.domain for n in out.graph.node} | {""}
    keep = [o for o in out.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del out.opset_import[:]
    out.opset_import.extend(keep)
    return out


def drop_unused_initializers(proto: onnx.ModelProto) -> int:
    """Remove initializers no node reads (dangling Constants of converters); returns how many."""
    used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}
    unused = [t for t in proto.graph.initializer if t.name not in used]
    for t in unused:
        proto.graph.initializer.remove(t)
    return len(unused)


def _rename(proto: onnx.ModelProto, old: str, new: str) -> None:
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for vi in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        if vi.name == old:
            vi.name = new


def _append_l2_norm(proto: onnx.ModelProto, source: str, rank: int, opset: int) -> None:
    """``embedding = flatten(source) / max(||flatten(source)||_2, 1e-12)`` in float32."""
    from onnx import helper, numpy_helper

    nodes = []
    x = source
    if rank != 2:
        nodes.append(helper.make_node("Flatten", [x], [_PREFIX + "flat"], axis=1, name=_PREFIX + "Flatten"))
        x = _PREFIX + "flat"
    eps = numpy_helper.from_array(np.array(1e-12, np.float32), _PREFIX + "eps")
    proto.graph.initializer.append(eps)
    if opset >= 18:  # ReduceL2 takes its axes as an input from opset 18
        proto.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), _PREFIX + "axes"))
        nodes.append(helper.make_node("ReduceL2", [x, _PREFIX + "axes"], [_PREFIX + "norm"], keepdims=1,
                                      name=_PREFIX + "ReduceL2"))
    else:
        nodes.append(helper.make_node("ReduceL2", [x], [_PREFIX + "norm"], axes=[1], keepdims=1,
                                      name=_PREFIX + "ReduceL2"))
    nodes.append(helper.make_node("Max", [_PREFIX + "norm", _PREFIX + "eps"], [_PREFIX + "norm_eps"],
                                  name=_PREFIX + "Max"))
    nodes.append(helper.make_node("Div", [x, _PREFIX + "norm_eps"], [OUTPUT_GLOBAL], name=_PREFIX + "Div"))
    proto.graph.node.extend(nodes)


def _run(path_or_bytes: Any, input_name: str, output: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(path_or_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run([output], {input_name: x})[0], np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return unit_rows(x.reshape(len(x), -1))


def import_onnx(src: str | Path, out: str | Path, spec: ImportSpec, overwrite: bool = False) -> tuple[Path, ModelCard]:
    """Rewrite the re-ID ONNX ``src`` into the project's contract and write it to ``out``.

    Returns:
        ``(out path, the card stored in it)``.
    Raises:
        CheckpointError: ``src`` is missing, not ONNX, or has no usable image input / embedding output.
        ConfigError: the spec contradicts the graph (input size), or ``out`` exists without ``overwrite``.
        ExportError: the rewritten graph fails the checker, or its outputs differ from the original's.
    """
    import onnx

    from reid_edge.card import set_card
    from reid_edge.deploy.export_onnx import save_onnx

    src_p, out_p = Path(src), Path(out)
    if not src_p.is_file():
        raise CheckpointError(f"model file {src_p} does not exist")
    if out_p.exists() and not overwrite:
        raise ConfigError(f"{out_p} exists; pass --overwrite to replace it")
    if out_p.resolve() == src_p.resolve():
        raise ConfigError("--out must differ from the source model")
    try:
        proto = onnx.load(str(src_p))
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise CheckpointError(f"{src_p} is not an ONNX model ({type(exc).__name__})") from None
    for prop in proto.metadata_props:
        if prop.key == "reid_edge.card":
            raise ConfigError(f"{src_p.name} already has a reid-edge model card; it needs no import")
    opset = _opset(proto)

    init_names = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise CheckpointError(f"{src_p.name} has {len(inputs)} inputs ({[i.name for i in inputs]}); "
                              "a re-ID model takes one image batch")
    inp = inputs[0]
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise CheckpointError(f"{src_p.name}: input '{inp.name}' is not float32")
    in_dims = _dims(inp)
    if len(in_dims) != 4 or in_dims[1] != 3:
        raise CheckpointError(f"{src_p.name}: input '{inp.name}' has shape {in_dims}, expected [N, 3, H, W]")
    graph_hw = in_dims[2:]
    if spec.input_size is not None:
        for got, want, what in zip(graph_hw, spec.input_size, ("height", "width")):
            if isinstance(got, int) and got > 0 and got != want:
                raise ConfigError(f"--input-size {spec.input_size[0]}x{spec.input_size[1]} contradicts the graph's "
                                  f"fixed input {what} {got}")
        height, width = spec.input_size
    elif all(isinstance(v, int) and v > 0 for v in graph_hw):
        height, width = int(graph_hw[0]), int(graph_hw[1])
    else:
        raise ConfigError(f"{src_p.name}: the input size is symbolic ({graph_hw}); pass --input-size HxW")

    out_names = [o.name for o in proto.graph.output]
    chosen = spec.output if spec.output is not None else (out_names[0] if len(out_names) == 1 else None)
    if chosen is None:
        raise ConfigError(f"{src_p.name} has {len(out_names)} outputs {out_names}; pick the embedding with --output")
    if chosen not in out_names:
        raise ConfigError(f"--output {chosen!r} is not an output of {src_p.name} ({', '.join(out_names)})")
    out_rank = len(_dims(next(o for o in proto.graph.output if o.name == chosen)))
    if out_rank < 2:
        raise CheckpointError(f"{src_p.name}: output '{chosen}' has rank {out_rank}; expected [N, D] or [N, D, 1, 1]")

    # reference outputs of the untouched model, for the numerical check below
    rng = np.random.default_rng(0)
    probe = rng.uniform(0, 1, (3, 3, height, width)).astype(np.float32)
    mean, std = spec.mean_std()
    probe = ((probe - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None])
    try:
        ref = _unit(np.concatenate([_run(proto.SerializeToString(), inp.name, chosen, probe[i:i + 1])
                                    for i in range(len(probe))]))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"ONNX Runtime cannot run {src_p.name} at {height}x{width}: {first[:300]}") from None
    dim = int(ref.shape[1])

    moved = constants_to_initializers(proto)
    _rename(proto, inp.name, INPUT_NAME)
    new_in = proto.graph.input[[i.name for i in proto.graph.input].index(INPUT_NAME)]
    shape = new_in.type.tensor_type.shape
    shape.dim[0].Clear()
    shape.dim[0].dim_param = "batch"
    shape.dim[2].dim_value, shape.dim[3].dim_value = height, width
    _append_l2_norm(proto, chosen, out_rank, opset)
    del proto.graph.output[:]
    proto.graph.output.append(onnx.helper.make_tensor_value_info(OUTPUT_GLOBAL, onnx.TensorProto.FLOAT,
                                                                 ["batch", dim]))
    del proto.graph.value_info[:]  # stale shapes (fixed batch) would mislead TensorRT and the quantizer
    drop_unused_initializers(proto)
    try:
        proto = optimize_basic(proto)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"ONNX Runtime cannot optimize the imported graph: {first[:300]}") from None
    drop_unused_initializers(proto)
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - shapes are advisory; the checker and the ORT run below decide
        pass

    extra: dict[str, Any] = {"imported_from": src_p.name, "source": spec.source, "license": spec.license,
                             "distance": "cosine", **spec.notes}
    card = ModelCard(
        backbone=spec.name, input_height=height, input_width=width, mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in std), channel_order=spec.channel_order.upper(),  # type: ignore[arg-type]
        global_dim=dim, num_stripes=0, stripe_dim=0, precision="fp32", encoding="fp32", opset=opset,
        source_checkpoint_sha256=sha256_file(src_p), lambda_g=1.0, lambda_c=0.0, match_gate=spec.match_gate,
        track_gate=spec.track_gate, same_camera_gate=spec.same_camera_gate, extra=extra)
    set_card(proto, card)
    proto.doc_string = (f"reid-edge import of {src_p.name} ({spec.name}): input '{INPUT_NAME}' float32 "
                        f"[B,3,{height},{width}] {card.channel_order}, mean {list(card.mean)}, std {list(card.std)} "
                        f"on [0,1] pixels; output '{OUTPUT_GLOBAL}' [B,{dim}] L2-normalized (global only). "
                        f"{moved} Constant nodes moved to initializers; ONNX Runtime basic graph rewrites "
                        "(constant folding, Conv/MatMul bias fusion).")
    data = proto.SerializeToString()
    try:
        emb = _run(data, INPUT_NAME, OUTPUT_GLOBAL, probe)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"the imported graph does not run with a batch of {len(probe)} ({first[:200]}); "
                          "is the batch size fixed inside the model (a Reshape to batch 1)?") from None
    cosine = (emb.astype(np.float64) * ref).sum(1)
    if emb.shape != ref.shape or float(cosine.min()) < IMPORT_MIN_COSINE:
        raise ExportError(f"the imported graph disagrees with the original (cosine {float(cosine.min()):.6f} < "
                          f"{IMPORT_MIN_COSINE}); is the batch size fixed inside the model?")
    save_onnx(proto, out_p)
    return out_p, card


def describe(card: ModelCard) -> Sequence[tuple[str, str]]:
    """Rows for the CLI summary of an imported card."""
    return [
        ("name", card.backbone),
        ("input", f"images [B,3,{card.input_height},{card.input_width}] {card.channel_order}"),
        ("normalization", f"mean {list(card.mean)}, std {[round(v, 6) for v in card.std]} on [0,1] pixels"),
        ("output", f"embedding [B,{card.global_dim}] L2-normalized (global only)"),
        ("opset", str(card.opset)),
        ("match gate", "pipeline default" if card.match_gate is None else f"{card.match_gate:g}"),
        ("track gate", "tracker default" if card.track_gate is None else f"{card.track_gate:g}"),
        ("same-camera gate", "none" if card.same_camera_gate is None else f"{card.same_camera_gate:g}"),
        ("source", str(card.extra.get("source") or "-")),
        ("license", str(card.extra.get("license") or "-")),
    ]
