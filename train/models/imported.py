"""Imported ONNX re-ID models as trainable PyTorch modules (adapting a real re-ID start).

:class:`OnnxGraph` executes a slice of an ONNX graph with PyTorch operators; every float
initializer becomes an ``nn.Parameter``, so the network trains like any in-tree backbone. It
implements exactly the operators of the shipped Intel models (see :data:`OPS`) and fails loudly on
any other, rather than converting approximately (``onnx2torch`` needs a stub ``torchvision``
module here, and its conversion of these graphs agreed with ONNX Runtime only to cosine 0.98).

:func:`build_imported_model` cuts a packaged model (``intel-0288``) into the method's shape:

* backbone: the graph from the input normalisation to the last feature map ``[B, C, h, w]``
  (the input of the head's whole-map depthwise convolution), fed the project's preprocessing
  (RGB, ImageNet mean/std) and mapping it exactly onto what the graph expects;
* global head: the model's own head (depthwise conv, Gemm, folded batch norm, LeakyReLU), so the
  global embedding starts as the shipped model's, then L2 normalised;
* stripe heads: new :class:`~.heads.StripeHeads` over the last feature map (the method's local
  branch), randomly initialised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reid_edge.card import IMAGENET_MEAN, IMAGENET_STD
from reid_edge.errors import CheckpointError, ConfigError
from reid_edge.names import IMPORTED_BACKBONES

from .heads import ModelConfig, ReIDModel, l2_normalize


def _attrs(node: object) -> dict[str, object]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}  # type: ignore[attr-defined]


def _pads2d(pads: Sequence[int]) -> tuple[int, int] | None:
    """ONNX ``[h0, w0, h1, w1]`` as PyTorch's symmetric ``(h, w)``, or None when asymmetric."""
    h0, w0, h1, w1 = (int(p) for p in pads)
    return (h0, w0) if (h0, w0) == (h1, w1) else None


def _conv(x: Tensor, w: Tensor, b: Tensor | None = None, *, a: dict) -> Tensor:
    pads = a.get("pads", [0, 0, 0, 0])
    sym = _pads2d(pads)
    if sym is None:
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        sym = (0, 0)
    return F.conv2d(x, w, b, stride=tuple(a.get("strides", [1, 1])), padding=sym,
                    dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)))


def _pool(kind: str) -> Callable[..., Tensor]:
    def run(x: Tensor, *, a: dict) -> Tensor:
        sym = _pads2d(a.get("pads", [0, 0, 0, 0]))
        if sym is None or a.get("ceil_mode", 0) or list(a.get("dilations", [1, 1])) != [1, 1]:
            raise ConfigError(f"{kind} with attributes {a} is not supported by the importer")
        kernel, stride = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
        if kind == "MaxPool":
            return F.max_pool2d(x, kernel, stride, sym)
        return F.avg_pool2d(x, kernel, stride, sym, count_include_pad=bool(a.get("count_include_pad", 0)))
    return run


def _reshape(x: Tensor, shape: Tensor, *, a: dict) -> Tensor:
    dims = [int(d) for d in shape.tolist()]
    if not a.get("allowzero", 0):  # 0 copies the input's dimension
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]  # symbolic under export
    return x.reshape(dims)


def _layer_norm(x: Tensor, scale: Tensor, bias: Tensor | None = None, *, a: dict) -> Tensor:
    axis = int(a.get("axis", -1)) % x.dim()
    if axis == 0:
        raise ConfigError("LayerNormalization over the batch axis is not supported by the importer")
    # plain ints (never the batch dimension), so the ONNX export keeps a dynamic batch
    shape = tuple(int(d) for d in x.shape[axis:])
    return F.layer_norm(x, shape, scale, bias, eps=float(a.get("epsilon", 1e-5)))


def _gemm(x: Tensor, w: Tensor, c: Tensor | None = None, *, a: dict) -> Tensor:
    x = x.t() if a.get("transA", 0) else x
    w = w.t() if a.get("transB", 0) else w
    y = float(a.get("alpha", 1.0)) * (x @ w)
    return y if c is None else y + float(a.get("beta", 1.0)) * c


OPS: dict[str, Callable[..., Tensor]] = {
    "Conv": _conv,
    "Relu": lambda x, *, a: F.relu(x),
    "Sigmoid": lambda x, *, a: torch.sigmoid(x),
    "LeakyRelu": lambda x, *, a: F.leaky_relu(x, float(a.get("alpha", 0.01))),
    "Add": lambda x, y, *, a: x + y,
    "Sub": lambda x, y, *, a: x - y,
    "Mul": lambda x, y, *, a: x * y,
    "Div": lambda x, y, *, a: x / y,
    "Max": lambda x, y, *, a: torch.maximum(x, y),
    "Reshape": _reshape,
    "ReduceMean": lambda x, *, a: x.mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1))),
    "ReduceL2": lambda x, *, a: x.norm(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1))),
    "LayerNormalization": _layer_norm,
    "MaxPool": _pool("MaxPool"),
    "AveragePool": _pool("AveragePool"),
    "Gemm": _gemm,
    "Gather": lambda x, idx, *, a: torch.index_select(x, int(a.get("axis", 0)), idx.long().flatten()).reshape(
        *x.shape[: int(a.get("axis", 0))], *idx.shape, *x.shape[int(a.get("axis", 0)) + 1:]),
}
"""The ONNX operators :class:`OnnxGraph` executes (those of the shipped Intel models)."""


def _key(name: str) -> str:
    return "t_" + re.sub(r"\W", "_", name)


class OnnxGraph(nn.Module):
    """Runs the nodes of an ONNX graph between ``inputs`` and ``outputs`` with PyTorch operators.

    Args:
        model: a loaded ``onnx.ModelProto``.
        inputs: tensor names fed to :meth:`forward`, in order.
        outputs: tensor names returned (one tensor, or a tuple when several).

    Raises:
        ConfigError: an operator outside :data:`OPS`, or an output that the inputs do not reach.
    """

    def __init__(self, model: object, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        super().__init__()
        from onnx import numpy_helper

        graph = model.graph  # type: ignore[attr-defined]
        producer = {out: node for node in graph.node for out in node.output}
        inits = {i.name: i for i in graph.initializer}
        needed: set[int] = set()
        stack = list(outputs)
        seen = set(inputs)
        while stack:  # walk back from the outputs to the fed inputs and initializers
            name = stack.pop()
            if name in seen or name in inits:
                continue
            seen.add(name)
            if name not in producer:
                raise ConfigError(f"tensor {name!r} is not reachable from the inputs {list(inputs)}")
            node = producer[name]
            needed.add(id(node))
            stack.extend(i for i in node.input if i)
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in graph.node if id(n) in needed]
        unknown = sorted({op for op, *_ in self.nodes} - set(OPS))
        if unknown:
            raise ConfigError(f"the ONNX importer does not implement {', '.join(unknown)}")
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.params = nn.ParameterDict()
        used = {i for _, ins, _, _ in self.nodes for i in ins if i in inits}
        self._keys: dict[str, str] = {}
        for name in sorted(used):
            array = np.array(numpy_helper.to_array(inits[name]))
            key = _key(name)
            self._keys[name] = key
            if array.dtype == np.float32 and array.ndim >= 1:  # weights, biases, folded batch norms
                self.params[key] = nn.Parameter(torch.from_numpy(array.copy()))
            else:  # shapes, indices, scalars: fixed
                self.register_buffer(key, torch.from_numpy(array.copy()), persistent=False)

    def _tensor(self, name: str, env: dict[str, Tensor]) -> Tensor:
        if name in env:
            return env[name]
        key = self._keys[name]
        return self.params[key] if key in self.params else getattr(self, key)

    def forward(self, *xs: Tensor) -> Tensor | tuple[Tensor, ...]:
        env = dict(zip(self.inputs, xs, strict=True))
        for op, ins, outs, attrs in self.nodes:
            env[outs[0]] = OPS[op](*(self._tensor(i, env) for i in ins if i), a=attrs)
        result = tuple(env[o] for o in self.outputs)
        return result[0] if len(result) == 1 else result


class ImportedBackbone(nn.Module):
    """The graph up to the last feature map, taking the project's preprocessing.

    The Intel graphs start with ``Gather`` (BGR to RGB) and ``Sub`` (ImageNet mean x 255) on
    0-255 pixels; the project feeds RGB normalised by ImageNet mean/std, so the ``Sub`` output is
    ``x * std * 255`` exactly, and the graph is entered there.
    """

    def __init__(self, graph: OnnxGraph, out_channels: int, graph_mean: np.ndarray | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.out_channels = out_channels
        scale = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.register_buffer("input_scale", scale, persistent=False)
        # a graph whose mean is the ImageNet mean rounded (intel-0277 stores it in FP16: 123.6875 for
        # 123.675) subtracts that instead: the difference, added back, keeps the entry exact
        mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
        offset = mean - (mean if graph_mean is None else np.asarray(graph_mean, np.float32).ravel())
        self.register_buffer("input_offset", torch.from_numpy(offset).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.graph(x * self.input_scale + self.input_offset)  # type: ignore[operator, return-value]


class ImportedGlobalHead(nn.Module):
    """The imported model's own embedding head, then L2 normalisation."""

    def __init__(self, graph: OnnxGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, feat: Tensor) -> Tensor:
        return l2_normalize(self.graph(feat))  # type: ignore[arg-type]


class _CutPoints(NamedTuple):
    """Where :func:`build_imported_model` cuts a packaged graph."""

    entry: str  # the tensor after the graph's mean subtraction
    feature: str  # the last feature map
    embedding: str  # the unnormalised embedding
    map_shape: tuple[int, int, int]  # (channels, height, width) of the feature map
    dim: int  # embedding size
    mean: np.ndarray  # the mean the graph subtracts (0-255 scale)


def _cut_points(model: object) -> _CutPoints:
    """Find the cut points of a packaged model (see :class:`_CutPoints`)."""
    import onnx

    graph = model.graph  # type: ignore[attr-defined]
    first = graph.node[:2]
    if [n.op_type for n in first] != ["Gather", "Sub"]:
        raise ConfigError("expected the graph to start with Gather (BGR->RGB) and Sub (mean); "
                          f"got {[n.op_type for n in first]}")
    mean = onnx.numpy_helper.to_array(next(i for i in graph.initializer if i.name in first[1].input))
    if not np.allclose(mean.ravel(), np.asarray(IMAGENET_MEAN) * 255.0, atol=0.05):  # FP16 rounding: 0.0125
        raise ConfigError(f"the graph subtracts {mean.ravel()}, not the ImageNet mean x 255")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(fixed)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    feature = None
    for node in graph.node:  # the head's depthwise conv whose kernel covers the whole map
        spatial = shapes.get(node.input[0], [0, 0, 0, 0])[2:]
        # (not the 1x1 convs of the channel gates, whose input maps are 1x1 too)
        kernel = _attrs(node).get("kernel_shape")
        if node.op_type == "Conv" and isinstance(kernel, list) and spatial == kernel and spatial != [1, 1]:
            feature = node.input[0]
            break
    l2 = [n for n in graph.node if n.op_type == "ReduceL2"]
    if feature is None or len(l2) != 1:
        raise ConfigError("could not find the last feature map (a whole-map conv) and the final L2 norm")
    embedding = l2[0].input[0]
    _, c, h, w = shapes[feature]
    dim = shapes[embedding][-1]
    return _CutPoints(first[1].output[0], feature, embedding, (c, h, w), dim, mean.astype(np.float32))


def build_imported_model(name: str, config: ModelConfig, height: int = 256, width: int = 128,
                         path: str | Path | None = None) -> ReIDModel:
    """A :class:`ReIDModel` from the packaged ONNX model ``name`` (its weights; new stripe heads).

    Args:
        name: one of :data:`IMPORTED_BACKBONES`.
        config: ``embed_dim`` must equal the model's embedding size; ``last_stride`` must be 1.
        height, width: must match the model's fixed input (its head pools with a whole-map kernel).
        path: an ONNX file to load instead of the packaged one (tests).

    Raises:
        ConfigError: unknown name, or sizes that the imported network cannot provide.
        CheckpointError: the packaged file is missing.
    """
    import onnx

    from reid_edge.models import packaged_path

    if name not in IMPORTED_BACKBONES:
        raise ConfigError(f"no importable backbone {name!r} (choose from {', '.join(IMPORTED_BACKBONES)})")
    file = Path(path) if path is not None else packaged_path(name)
    try:
        model = onnx.load(str(file))
    except Exception as exc:  # noqa: BLE001 - any parse failure is one message for the user
        raise CheckpointError(f"cannot read {file}: {exc}") from exc
    cut = _cut_points(model)
    channels, h, w = cut.map_shape
    in_h, in_w = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][2:]
    if (height, width) != (in_h, in_w):
        raise ConfigError(f"{name} takes {in_h}x{in_w} crops (its head pools a fixed {h}x{w} map); "
                          f"pass --height {in_h} --width {in_w}")
    if config.embed_dim != cut.dim:
        raise ConfigError(f"{name} has a {cut.dim}-d embedding; pass --embed-dim {cut.dim} "
                          f"(and --num-stripes dividing it; embed_dim in a --config)")
    if config.last_stride != 1:
        raise ConfigError(f"{name} has a fixed architecture; last_stride must be 1")
    backbone = ImportedBackbone(OnnxGraph(model, [cut.entry], [cut.feature]), channels, cut.mean)
    head = ImportedGlobalHead(OnnxGraph(model, [cut.feature], [cut.embedding]))
    return ReIDModel(backbone, config, global_head=head)
