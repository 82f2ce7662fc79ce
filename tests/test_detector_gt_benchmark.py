"""benchmarks.detector_gt: recall and precision of thresholded detections against ground truth."""

from __future__ import annotations

import numpy as np

from benchmarks.detector_gt import format_table, score_against_gt


def test_score_against_gt_by_hand() -> None:
    gt = {1: np.array([[0, 0, 10, 20], [50, 0, 10, 20]], float), 2: np.array([[0, 0, 10, 20]], float)}
    dets = {
        1: np.array([[0, 0, 10, 20, 0.9], [50, 0, 10, 20, 0.55], [100, 0, 10, 20, 0.7]]),  # 2 hits, 1 false
        2: np.array([[5, 0, 10, 20, 0.8]]),  # IoU 1/3 with the person: a miss and a false box
        3: np.array([[0, 0, 10, 20, 0.9]]),  # a frame without ground truth is not counted
    }
    at_05 = score_against_gt(gt, dets, 0.5)
    assert (at_05["recall"], at_05["precision"], at_05["boxes"]) == (2 / 3, 2 / 4, 4)
    at_06 = score_against_gt(gt, dets, 0.6)  # the 0.55 box drops out
    assert (at_06["recall"], at_06["precision"]) == (1 / 3, 1 / 3)
    table = format_table({"S": {"fp32": {"0.5": at_05, "ms_per_frame": 12.34}}}, [0.5])
    assert table.splitlines()[2] == "| S | fp32 | 0.667 | 0.500 | 12.3 |"
