"""Shared tiny artifacts for the export/calibration/backend/bench tests (built once per session).

A resnet18 at 64x32 with a 64-d embedding and 4 stripes: export, calibration and quantization
of it take a few seconds on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HEIGHT, WIDTH, EMBED, STRIPES = 64, 32, 64, 4
N_CALIB_IMAGES = 40


@dataclass
class Tiny:
    root: Path
    model: Any
    card: Any
    checkpoint: Path
    calib_dir: Path
    onnx: Path
    fp32_card: Any
    _int8: dict[str, Path] | None = None

    def crops(self, n: int = 8, seed: int = 1) -> list[np.ndarray]:
        from reid_edge.deploy.parity import fixed_crops

        return fixed_crops(n, seed=seed)

    def images(self, n: int = 8, seed: int = 1) -> np.ndarray:
        from reid_edge.preprocess import preprocess_for_card

        return preprocess_for_card(self.crops(n, seed), self.fp32_card)

    def int8(self) -> dict[str, Path]:
        """Both Q/DQ encodings from one calibration (cached)."""
        if self._int8 is None:
            from reid_edge.calibration.calib_set import list_images, load_calibration_array
            from reid_edge.calibration.quantize import ENCODINGS, calibrate, quantize_encoding
            from reid_edge.deploy.export_onnx import save_onnx

            images = load_calibration_array(list_images(self.calib_dir)[:24], self.fp32_card)
            ranges = calibrate(self.onnx, images, "minmax")
            self._int8 = {}
            for name, enc in ENCODINGS.items():
                path = self.root / enc.filename
                save_onnx(quantize_encoding(self.onnx, ranges, name, self.fp32_card), path)
                self._int8[name] = path
        return self._int8


_CACHE: dict[str, Tiny] = {}


def write_calib_images(folder: Path, n: int, seed: int = 5) -> list[str]:
    import cv2

    from reid_edge.deploy.parity import fixed_crops

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, crop in enumerate(fixed_crops(n, seed=seed)):
        p = folder / f"{i:03d}.jpg"
        cv2.imwrite(str(p), crop)
        paths.append(str(p))
    return paths


def save_tiny_checkpoint(path: Path, model: Any, card: Any, calibration_images: list[str]) -> Path:
    from reid_edge.train.checkpoint import save_checkpoint

    save_checkpoint(path, model=model, method=None, optimizer=None, epoch=1, config=None, dataset_fingerprint="test",
                    rng_state=None, calibration_images=calibration_images, card=card)
    return path


def tiny(tmp_path_factory: Any) -> Tiny:
    """Build (once) a tiny model, its checkpoint with calibration images, and its FP32 ONNX."""
    if "tiny" not in _CACHE:
        import torch

        from reid_edge.card import ModelCard
        from reid_edge.deploy.export_onnx import export_onnx
        from reid_edge.train.models import build_model

        root = tmp_path_factory.mktemp("tiny-export")
        torch.manual_seed(0)
        model = build_model("resnet18", num_stripes=STRIPES, embed_dim=EMBED).eval()
        card = ModelCard(backbone="resnet18", input_height=HEIGHT, input_width=WIDTH, global_dim=EMBED,
                         num_stripes=STRIPES, stripe_dim=EMBED // STRIPES)
        calib_dir = root / "calib"
        images = write_calib_images(calib_dir, N_CALIB_IMAGES)
        ckpt = save_tiny_checkpoint(root / "run" / "last.pt", model, card, images)
        onnx_path, fp32_card = export_onnx(model, card, root / "model.onnx", checkpoint=ckpt)
        _CACHE["tiny"] = Tiny(root, model, card, ckpt, calib_dir, onnx_path, fp32_card)
    return _CACHE["tiny"]
