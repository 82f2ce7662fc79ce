"""HOTA: hand cases (perfect 1, empty 0, a known split) and agreement with TrackEval on PETS09-S2L1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid_edge.pipeline.hota import hota
from reid_edge.pipeline.motfile import Tracks, read_mot_tracks


def perturbed_prediction(gt: Tracks) -> Tracks:
    """A deterministic imperfect tracker output: box jitter, every 7th row dropped, ids of each
    person split after frame 400 (odd ids) and one false positive per 5th frame."""
    pred: Tracks = {}
    for f, (ids, boxes) in gt.items():
        k = np.arange(len(ids))
        keep = (f * 3 + k) % 7 != 0
        jitter = np.stack([np.sin(f + k), np.cos(f * 1.3 + k), np.sin(f * 0.7 + 0 * k), np.cos(f * 0.9 + k)], axis=1)
        b = boxes[keep] + 0.08 * boxes[keep, 2:3] * jitter[keep]
        new_ids = np.where((f > 400) & (ids[keep] % 2 == 1), ids[keep] + 1000, ids[keep])
        if f % 5 == 0:
            b = np.concatenate([b, [[10.0, 10.0, 20.0, 50.0]]])
            new_ids = np.concatenate([new_ids, [5000]])
        pred[f] = (new_ids.astype(np.int64), b)
    return pred


def _one(boxes: list[list[float]], ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4)


def test_perfect_and_empty() -> None:
    gt = {f: _one([[0, 0, 10, 20], [50, 0, 10, 20]], [1, 2]) for f in range(1, 11)}
    perfect = hota(gt, gt)
    assert perfect["HOTA"] == pytest.approx(1.0) and perfect["AssA"] == pytest.approx(1.0)
    assert perfect["LocA"] == pytest.approx(1.0)
    assert hota(gt, {})["HOTA"] == 0.0
    # relabelled ids are the same tracking
    relabelled = {f: (ids + 100, b) for f, (ids, b) in gt.items()}
    assert hota(gt, relabelled)["HOTA"] == pytest.approx(1.0)


def test_split_identity_halves_association() -> None:
    # one person over 10 frames, predicted as two ids of 5 frames each: detection perfect, and each
    # TP's association Jaccard is 5 / (10 + 5 - 5) = 0.5
    gt = {f: _one([[0, 0, 10, 20]], [1]) for f in range(1, 11)}
    pred = {f: _one([[0, 0, 10, 20]], [1 if f <= 5 else 2]) for f in range(1, 11)}
    m = hota(gt, pred)
    assert m["DetA"] == pytest.approx(1.0) and m["AssA"] == pytest.approx(0.5)
    assert m["HOTA"] == pytest.approx(np.sqrt(0.5))


# Computed once with TrackEval 1.3.0 (pip install trackeval; numpy 2.4): trackeval.metrics.HOTA()
# .eval_sequence on these same arrays (ids remapped to 0..N-1, similarity = the IoU matrices of
# reid_edge.pipeline.tracker.iou_matrix), alpha-averaged. TrackEval is not a dependency: it pulls
# opencv-python (clashing with the headless contrib build), pycocotools and matplotlib.
TRACKEVAL_PETS = {"HOTA": 0.6872269110858407, "DetA": 0.7097514054369554, "AssA": 0.66543088971779,
                  "LocA": 0.8694666239092762}


def test_agrees_with_trackeval_on_pets(shared_data: Path) -> None:
    path = shared_data / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    gt = read_mot_tracks(path, is_gt=True)
    ours = hota(gt, perturbed_prediction(gt))
    for key, value in TRACKEVAL_PETS.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


def test_eval_table_prints_full_numbers_in_80_columns(tmp_path: Path) -> None:
    from reid_edge.commands.eval_mtmc import format_result
    from reid_edge.pipeline.mtmc_eval import evaluate_mtmc

    gt = {f: _one([[0, 0, 10, 20], [50, 0, 10, 20]], [1, 2]) for f in range(1, 21)}
    name = "pets2009_s2l1_view1x"  # 20 characters
    lines = [f"{f},{i},{x},{y},{w},{h},1,-1,-1,-1" for f, (ids, b) in gt.items() for i, (x, y, w, h) in zip(ids, b)]
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / f"{name}.gt.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / f"{name}.txt").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    result = evaluate_mtmc(tmp_path / "pred", tmp_path / "gt")
    m = result["cameras"][name]
    assert m["hota"] == pytest.approx(hota(gt, {f: gt[f] for f in range(1, 11)})["HOTA"])
    text = format_result(result)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text and f"{m['hota']:.3f}" in text and f"{m['mota']:.3f}" in text
    assert text.count(name) == 2 and text.count("cross-camera") == 2
