"""Acceptance on real footage: the full default pipeline (YOLOX-Nano, tracker with appearance, the
packaged re-ID model, association) on the first 150 frames of PETS09-S2L1 against MOT15 ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FRAMES = 150
# Measured when written (packaged YOLOX-Nano + intel-0288): MOTA 0.730, IDF1 0.792, HOTA 0.569,
# 6 ID switches. With the card's tracker gate 0.85 (was 1.2; better on both whole sequences,
# README "Appearance gate"): MOTA 0.708, IDF1 0.698, HOTA 0.538, 8 switches on these 150 frames.
# Most of what was missing was not tracking error: a person walking on the far path (top left,
# ~20 px tall, frames ~80-150) was tracked but is not in MOT15's ground truth (68 "false positive"
# rows). Boxes under 24 px are no longer tracked (tracker.min_box_height; a person that small cannot
# be re-identified, measured on DukeMTMC-reID, README "Smallest tracked box"): MOTA 0.784, IDF1
# 0.726 here (cached-detection harness). The floor is the issue's acceptance.
MIN_MOTA = 0.75
MIN_IDF1 = 0.6
# The issue's goals for the whole sequence (FP32 YOLOX-Nano): MOTA >= 0.85, IDF1 >= 0.75, in the reading its
# baseline was measured in (every ground-truth row a person, README "Three readings of the ground truth").
# Measured when written: MOT convention 0.867 / 0.796; default pipeline, one id per person 0.865 / 0.774.
GOAL_MOTA = 0.85
GOAL_IDF1 = 0.75
# ground-truth ids of PETS09-S2L1 that are one person come back into view (README "IDF1: returning people")
PETS_SAME_PERSON = {18: 14, 8: 14, 15: 14, 5: 9, 3: 11, 6: 10, 7: 16, 4: 12, 2: 13, 1: 19}


def _run_pets(shared_data: Path, tmp_path: Path, max_frames: int | None, config: Any = None,
              same: dict[int, int] | None = None, all_rows: bool = False) -> dict[str, Any]:
    """The default pipeline (or ``config``) on PETS09-S2L1, scored against its ground truth read as asked
    (:func:`benchmarks.mot15.write_scaled_gt`); skips without the clip."""
    from benchmarks.mot15 import SEQUENCES, write_scaled_gt
    from reid_edge.backends import load_backend
    from reid_edge.models import resolve
    from reid_edge.pipeline.mtmc_eval import evaluate_mtmc
    from reid_edge.pipeline.runner import run_pipeline

    video_rel, gt_rel, scale = SEQUENCES["PETS09-S2L1"]
    video, gt = shared_data / video_rel, shared_data / gt_rel
    if not (video.is_file() and gt.is_file()):
        pytest.skip("PETS09-S2L1 video or ground truth absent")
    write_scaled_gt(gt, scale, tmp_path / "gt" / "pets.gt.txt", max_frames, same, all_rows)
    backend = load_backend(resolve(None), device="cpu")
    try:
        summary = run_pipeline([str(video)], tmp_path / "out", backend, camera_names=["pets"], config=config,
                               max_frames=max_frames, device="cpu")
    finally:
        backend.close()
    m: dict[str, Any] = evaluate_mtmc(tmp_path / "out", tmp_path / "gt")["cameras"]["pets"]
    m["frames"] = summary["cameras"]["pets"]["frames"]
    return m


def test_pets_first_150_frames(shared_data: Path, tmp_path: Path) -> None:
    m = _run_pets(shared_data, tmp_path, FRAMES)
    print(f"PETS09-S2L1 first {FRAMES} frames: MOTA {m['mota']:.3f} IDF1 {m['idf1']:.3f} HOTA {m['hota']:.3f} "
          f"ID switches {int(m['num_switches'])}")
    assert m["frames"] == FRAMES
    assert m["mota"] >= MIN_MOTA, m
    assert m["idf1"] >= MIN_IDF1, m


@pytest.mark.parametrize("convention", ["mot", "default"])
def test_pets_whole_sequence_meets_the_issue_goals_in_its_reading(shared_data: Path, tmp_path: Path,
                                                                  convention: str) -> None:
    """MOT convention scored with MOT15's ids; the default pipeline, which re-identifies a returning person,
    scored with one id per person. Both with every ground-truth row counted as a person."""
    from benchmarks.mot15 import mot_convention
    from reid_edge.pipeline.runner import PipelineConfig

    mot = convention == "mot"
    m = _run_pets(shared_data, tmp_path, None, mot_convention(PipelineConfig()) if mot else None,
                  None if mot else PETS_SAME_PERSON, all_rows=True)
    print(f"PETS09-S2L1 ({convention}): MOTA {m['mota']:.3f} IDF1 {m['idf1']:.3f} HOTA {m['hota']:.3f}")
    assert m["mota"] >= GOAL_MOTA, m
    assert m["idf1"] >= GOAL_IDF1, m
