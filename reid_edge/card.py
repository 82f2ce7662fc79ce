"""Model cards: every artifact describes itself (STYLE rule 3).

A card travels inside ONNX files (``metadata_props`` key :data:`CARD_KEY`), in checkpoints
(``"card"`` entry) and beside/inside TensorRT engines (JSON header). Nothing about a model is
ever inferred from its file name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .errors import CheckpointError
from .names import DEFAULT_LAMBDA_C

if TYPE_CHECKING:
    import onnx

CARD_KEY = "reid_edge.card"
INPUT_NAME = "images"
OUTPUT_GLOBAL = "embedding"
OUTPUT_STRIPES = "stripes"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelCard:
    """What a consumer must know to feed an artifact and read its outputs.

    Input: float32 NCHW, ``channel_order`` channels, scaled to [0, 1], then ``(x - mean) / std``.
    Outputs: :data:`OUTPUT_GLOBAL` ``[B, global_dim]`` and :data:`OUTPUT_STRIPES`
    ``[B, num_stripes, stripe_dim]``, each L2-normalized along the last axis. A global-only model
    (``num_stripes == 0``, e.g. one brought in by ``reid-edge import``) has no stripes output.

    ``match_gate``: the cross-camera association gate (distance between unit embeddings) chosen
    for this model; None: the pipeline's default, tuned for the project's own models.
    ``track_gate``: the same for the tracker's appearance gate at crossings
    (``tracker.max_appearance_dist``); None: the tracker's default.
    ``same_camera_gate``: the association's stricter gate for re-linking a person to an identity
    the same camera has already seen (``association.same_camera_max_distance``); None: none.
    """

    backbone: str
    input_height: int = 256
    input_width: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    global_dim: int = 2048
    num_stripes: int = 8
    stripe_dim: int = 256
    precision: str = "fp32"
    encoding: str = "fp32"  # fp32 | fp16 | int8-qdq-trt (symmetric QInt8) | int8-qdq-cpu (QUInt8 activations)
    opset: int | None = None
    source_checkpoint_sha256: str | None = None
    calibration_sha256: str | None = None
    calibration_method: str | None = None
    lambda_g: float = 0.5
    match_gate: float | None = None
    track_gate: float | None = None
    same_camera_gate: float | None = None
    lambda_c: float = DEFAULT_LAMBDA_C  # same-camera penalty of the combined distance (the run's method setting)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"model card is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise CheckpointError(f"model card has unknown fields {sorted(unknown)}; written by a newer version?")
        if "backbone" not in data:
            raise CheckpointError("model card lacks 'backbone'")
        kwargs = dict(data)
        extra = dict(kwargs.get("extra") or {})
        if "lambda_c" not in kwargs and "lambda_c" in extra:  # cards written before lambda_c had a field
            kwargs["lambda_c"] = float(extra.pop("lambda_c"))
            kwargs["extra"] = extra
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    @property
    def has_stripes(self) -> bool:
        """False for global-only models: their ONNX/engine has no stripes output."""
        return self.num_stripes > 0 and self.stripe_dim > 0


@overload
def card_setting(configured: float | None, card: object, name: str, default: float) -> tuple[float, str]: ...


@overload
def card_setting(configured: float | None, card: object, name: str, default: None) -> tuple[float | None, str]: ...


def card_setting(configured: float | None, card: object, name: str, default: float | None) -> tuple[float | None, str]:
    """A per-model setting and where it came from: ``configured`` (the user's configuration) when
    given, else the card's field ``name`` when set, else ``default``; the source is ``"config"``,
    ``"model card"``, ``"default"``, or ``"none"`` when ``default`` is None (the setting is off).
    ``card`` may be None or any object (a backend's card)."""
    if configured is not None:
        return float(configured), "config"
    value = getattr(card, name, None)
    if value is not None:
        return float(value), "model card"
    return (None, "none") if default is None else (float(default), "default")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def read_card(model: onnx.ModelProto | str | Path) -> ModelCard:
    """Read the model card from an ONNX model or file.

    Raises:
        CheckpointError: the model has no reid-edge card.
    """
    import onnx

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == CARD_KEY:
            return ModelCard.from_json(prop.value)
    raise CheckpointError("ONNX model has no reid-edge model card (metadata_props key "
                          f"'{CARD_KEY}'); export it with `reid-edge export`")


def set_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """Store ``card`` in ``model.metadata_props`` (replacing an older card), plus a doc string."""
    keep = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = CARD_KEY
    entry.value = card.to_json()
    model.doc_string = (
        f"reid-edge {card.backbone} ({card.encoding}). Input '{INPUT_NAME}' float32 [B,3,{card.input_height},"
        f"{card.input_width}] {card.channel_order}, mean {list(card.mean)}, std {list(card.std)}. Outputs "
        f"'{OUTPUT_GLOBAL}' [B,{card.global_dim}] and '{OUTPUT_STRIPES}' [B,{card.num_stripes},{card.stripe_dim}], "
        "each L2-normalized along the last axis."
    )
