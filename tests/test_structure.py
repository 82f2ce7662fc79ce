"""Structure rules of issue 16 that a refactor could silently break."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("reid_edge", "train", "deploy", "calibration", "benchmarks", "scripts")
CLI = {ROOT / "reid_edge" / "cli.py", ROOT / "reid_edge" / "__main__.py"}


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved within reid_edge)."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT).with_suffix("")
    package = ["reid_edge", *rel.parts[:-1]] if rel.parts[0] != "reid_edge" else list(rel.parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def test_nothing_outside_the_cli_imports_the_cli_or_its_commands() -> None:
    offenders = []
    for folder in LIBRARY:
        for path in (ROOT / folder).rglob("*.py"):
            if path in CLI or (ROOT / "reid_edge" / "commands") in path.parents:
                continue
            bad = {n for n in _imports(path) if n in ("reid_edge.cli", "reid_edge.commands")
                   or n.startswith(("reid_edge.cli.", "reid_edge.commands."))}
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert not offenders, offenders


def test_the_names_module_is_what_the_registries_build() -> None:
    from reid_edge.errors import ConfigError
    from reid_edge.names import BACKBONES, DATA_FORMATS, DEFAULT_LAMBDA_C, DEFAULT_MAX_DISTANCE
    from reid_edge.pipeline.associate import AssociationConfig, resolve_gate
    from reid_edge.train.config import TrainConfig
    from reid_edge.train.method import MethodConfig
    from reid_edge.train.models import build_backbone

    for name in BACKBONES:
        assert build_backbone(name) is not None
    with pytest.raises(ConfigError):
        build_backbone("resnet101")
    assert "unlabeled" in DATA_FORMATS
    assert MethodConfig().lambda_c == DEFAULT_LAMBDA_C
    # no configured gate: the model card's, else the default
    assert resolve_gate(AssociationConfig().max_distance, None) == (DEFAULT_MAX_DISTANCE, "default")
    with pytest.raises(ConfigError, match="backbone"):
        TrainConfig(backbone="resnet101")  # type: ignore[arg-type]


def test_card_lambda_c_is_a_typed_field_and_old_cards_still_read() -> None:
    from reid_edge.card import ModelCard
    from reid_edge.names import DEFAULT_LAMBDA_C

    assert ModelCard(backbone="resnet18").lambda_c == DEFAULT_LAMBDA_C
    old = ModelCard.from_dict({"backbone": "resnet18", "extra": {"lambda_c": 1.0, "note": "x"}})
    assert old.lambda_c == 1.0 and old.extra == {"note": "x"}
    assert ModelCard.from_json(ModelCard(backbone="resnet18", lambda_c=0.5).to_json()).lambda_c == 0.5


def test_names_and_train_config_import_without_torch() -> None:
    code = ("import sys\nimport reid_edge.names, reid_edge.artifacts, reid_edge.train.config\n"
            "print('LOADED', [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_distributed_helpers_are_no_ops_on_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from reid_edge.train.distributed import (
        DistInfo,
        all_gather_cat,
        all_gather_objects,
        barrier,
        setup_distributed,
        teardown,
    )

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = setup_distributed("cpu")
    assert info == DistInfo() and info.is_main and not info.owns_group
    t = torch.arange(6).reshape(3, 2)
    assert all_gather_cat(t, 1) is t
    assert all_gather_objects({"a": 1}, 1) == [{"a": 1}]
    barrier(1)
    teardown(info)


# Layers, lowest first: a module may import its own layer and the ones below, never above.
LAYERS = ("runtime", "train", "calibration", "deploy", "top")
# The PyTorch backend rebuilds a checkpoint's model: the one downward-facing runtime piece that
# needs the training code (imported lazily, so the runtime still imports without torch).
ALLOWED_UP = {("reid_edge/backends/torch_backend.py", "reid_edge.train.checkpoint")}


def _layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "reid_edge":
        return None
    if len(parts) > 1 and parts[1] in ("train", "calibration", "deploy"):
        return parts[1]
    if len(parts) > 1 and parts[1] in ("cli", "commands", "demo", "__main__"):
        return "top"
    return "runtime"


def _layer_of_file(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] in ("train", "calibration", "deploy"):
        return rel.parts[0]
    if rel.parts[0] in ("benchmarks", "scripts") or rel.parts[1] in ("cli.py", "commands", "demo.py", "__main__.py"):
        return "top"
    return "runtime"


def test_no_import_runs_up_the_layers() -> None:
    offenders = []
    for folder in LIBRARY:
        for path in (ROOT / folder).rglob("*.py"):
            own = LAYERS.index(_layer_of_file(path))
            rel = str(path.relative_to(ROOT))
            for name in _imports(path):
                layer = _layer_of_module(name)
                allowed = any(rel == f and name.startswith(m) for f, m in ALLOWED_UP)
                if layer is not None and LAYERS.index(layer) > own and not allowed:
                    offenders.append(f"{rel} ({LAYERS[own]}) imports {name} ({layer})")
    assert not offenders, sorted(set(offenders))
