"""Proof that training learns: synthetic crops, resnet18 from scratch, a couple of CPU minutes.

Identities are never read for training; they are used only to measure mAP before and after.

Baseline: the untrained network with its batch-norm statistics estimated on the training crops
(no weight update). A freshly initialised network evaluated as is has identity batch norms
(running mean 0, variance 1), which on these colourful synthetic crops behaves like a colour
histogram; the first training steps replace those statistics, so only a baseline with the same
statistics isolates what learning adds. Both numbers are printed.
Settings scaled down for ~200 training crops (see the report for how they were chosen): input
64x32, 256-d embedding, 4 stripes, 16 images per batch, lr 0.03, K=3 positives, M=100
negatives, a longer warm-up (instance discrimination) and a larger same-camera penalty, because
the synthetic cameras have strong colour styles and training from random weights needs the
warm-up to learn augmentation invariance first.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest
import torch

from reid_edge.train.config import TrainConfig
from reid_edge.train.data.loader import build_plain_loader
from reid_edge.train.evaluate import TorchModelBackend, evaluate
from reid_edge.train.method import MethodConfig
from reid_edge.train.trainer import Trainer


def _recalibrated(model: torch.nn.Module, loader: torch.utils.data.DataLoader) -> torch.nn.Module:
    """A copy of ``model`` whose batch-norm running statistics are averaged over ``loader`` (no grad)."""
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for images, _index, _cam in loader:
            net(images)
    return net.eval()

EPOCHS = int(os.environ.get("REID_EDGE_LEARN_EPOCHS", "16"))
MARGIN = 0.15


@pytest.mark.slow
def test_training_beats_untrained_network(tmp_path: Path) -> None:
    from reid_edge.synth.crops import generate_crops

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores: no oversubscription stalls
    try:
        data = tmp_path / "crops"
        generate_crops(data, ids=40, cameras=4, seed=0)
        cfg = TrainConfig(
            data=str(data), out=str(tmp_path / "run"), backbone="resnet18", epochs=EPOCHS, batch_size=16,
            lr=0.03, height=64, width=32, num_stripes=4, embed_dim=256, workers=0, eval_every=EPOCHS,
            eval_batch_size=128, seed=0,
            method=MethodConfig(k=3, m=100, warmup_epochs=6, lambda_c=0.3),
        )
        t0 = time.time()
        trainer = Trainer(cfg, show_progress=False, log=lambda m: None)
        raw = trainer.evaluate()
        plain = build_plain_loader(trainer.data.train, height=cfg.height, width=cfg.width, batch_size=cfg.batch_size,
                                   workers=0)
        base_model = _recalibrated(trainer.model, plain)
        before = evaluate(TorchModelBackend(base_model, trainer.card), trainer.data.query, trainer.data.gallery,
                          batch_size=128, lambda_g=cfg.method.lambda_g, lambda_c=cfg.method.lambda_c)
        result = trainer.run()
        after = result.history[-1]
        seconds = time.time() - t0
        print(f"untrained mAP {before.mAP:.3f} rank-1 {before.rank1:.3f} (as initialised: mAP {raw.mAP:.3f}); "
              f"trained mAP {after['mAP']:.3f} rank-1 {after['rank1']:.3f}; {seconds:.0f} s")
        assert after["mAP"] >= before.mAP + MARGIN, (before.mAP, after["mAP"])
    finally:
        torch.set_num_threads(n_threads)
