"""Proof that training learns: synthetic crops, MobileNetV2, about a CPU minute.

Identities are never read for training; they are used only to measure mAP before and after.

The network is the one a user at a new site trains: MobileNetV2 with the local ImageNet weights
(``--pretrained imagenet``) and freshly initialised embedding heads. The baseline is that same
network evaluated before the first step, as is (eval mode, ImageNet batch-norm statistics): no
re-estimated statistics or other adjustment, so the margin is what training added.

Settings scaled down for ~480 training crops (60 identities x 4 cameras; chosen on training
seeds 0-3, which gave +25.6 / +29.2 / +29.2 / +21.4 mAP points, see the README): 128x64 input,
256-d embedding, 4 stripes, 16 images per batch, the published lr 1e-3, K=3 positives, M=100
negatives, 2 warm-up epochs, and a same-camera penalty of 1.0 because the synthetic cameras
have strong colour casts (with the paper's 0.05 the nearest neighbours are same-camera crops).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from reid_edge.train.config import TrainConfig
from reid_edge.train.method import MethodConfig
from reid_edge.train.models import pretrained
from reid_edge.train.trainer import Trainer

EPOCHS = int(os.environ.get("REID_EDGE_LEARN_EPOCHS", "12"))
MARGIN = 0.15


@pytest.mark.slow
def test_training_beats_untrained_network(tmp_path: Path) -> None:
    from reid_edge.errors import CheckpointError
    from reid_edge.synth.crops import generate_crops

    try:
        pretrained.resolve_imagenet_weights("mobilenetv2")
    except CheckpointError as err:
        pytest.skip(f"no local ImageNet MobileNetV2 weights: {err}")
    data = tmp_path / "crops"
    generate_crops(data, ids=60, cameras=4, seed=0)
    cfg = TrainConfig(
        data=str(data), out=str(tmp_path / "run"), backbone="mobilenetv2", pretrained="imagenet",
        epochs=EPOCHS, batch_size=16, lr=1e-3, height=128, width=64, num_stripes=4, embed_dim=256,
        workers=0, eval_every=EPOCHS, eval_batch_size=128, seed=0,
        method=MethodConfig(k=3, m=100, warmup_epochs=2, lambda_c=1.0),
    )
    t0 = time.time()
    trainer = Trainer(cfg, show_progress=False, log=lambda m: None)
    before = trainer.evaluate()
    result = trainer.run()
    after = result.history[-1]
    seconds = time.time() - t0
    print(f"untrained (ImageNet backbone, new heads) mAP {before.mAP:.3f} rank-1 {before.rank1:.3f}; "
          f"trained mAP {after['mAP']:.3f} rank-1 {after['rank1']:.3f}; {seconds:.0f} s, "
          f"{torch.get_num_threads()} threads")
    assert after["mAP"] >= before.mAP + MARGIN, (before.mAP, after["mAP"])
