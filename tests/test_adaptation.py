"""The site adaptation loop of issue 6 (``benchmarks/adaptation.py``) at a small size.

A model trained without labels on synthetic site A is deployed at site B (another look: indoor,
warm light); harvest -> train -> export INT8 on site-B footage must make re-identification of the
site's own people better, and must not make cross-camera tracking worse.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.adaptation import CAMS, AdaptationConfig, _metric, format_table, run_adaptation, scene_crops

# The smallest size at which adapting showed (at a third of it, 16 site-A ids, 3+3 epochs, 6 people,
# it did NOT help: too few harvested crops). About 2 min of CPU with one thread.
# What is asserted was chosen on runs of this config with seeds 0-2 (and 16 test people, seeds 0-1):
# cross-camera IDF1 of the deployed INT8 pipeline rose in every run, 45.6 -> 66.5, 55.6 -> 66.5,
# 49.4 -> 68.5, 37.2 -> 64.3, 48.5 -> 58.1. The re-id mAP on the test footage (16 queries) moved
# between -18.9 and +36.6 points across the same runs: too noisy at this size to assert, so it is
# printed only; `python -m benchmarks.adaptation` measures it at full size (10.1 -> 24.1 site-B crops mAP).
SMALL = AdaptationConfig(
    seed=0, a_ids=30, a_epochs=5, b_epochs=5, train_people=12, train_seconds=45.0, test_people=8, test_seconds=40.0,
    eval_ids=16, calib_size=16, variants=("plain",), recalibrate=False, gate_sweep=(),
)
# Cross-camera IDF1 of the adapted model must not fall below the un-adapted one's. The 5-point margin
# asserted before was chosen with the IoU-only tracker, whose un-adapted baseline was 37-56; the
# appearance-aware tracker (issue 12) lifts the un-adapted model to 71.1 on this seed, and the adapted
# one reached 74.5 (+3.4; measured 2026-11-28, one thread): the margin shrank with the better baseline.
IDF1_MARGIN = 0.0


def _parse(name: str) -> tuple[int, int]:
    pid, cam = name.split("_")[:2]
    return int(pid), int(cam[1:cam.index("s")])


def test_scene_crops_market_layout(tmp_path: Path) -> None:
    from reid_edge.synth.scene import generate_scene

    scene = tmp_path / "scene"
    generate_scene(scene, cameras=2, people=3, seconds=8.0, seed=3, domain=1)
    root = scene_crops(scene, tmp_path / "crops", every=4, per_track=5)
    query = sorted(p.name for p in (root / "query").glob("*.jpg"))
    gallery = sorted(p.name for p in (root / "bounding_box_test").glob("*.jpg"))
    assert query and gallery
    q_keys = [_parse(n) for n in query]
    assert len(q_keys) == len(set(q_keys)), "one query per (person, camera)"
    g_keys = [_parse(n) for n in gallery]
    for key in set(g_keys):
        assert key in q_keys  # a gallery track always has its query
        assert g_keys.count(key) <= 4  # per_track 5, one of them is the query
    assert {c for _, c in q_keys} <= set(range(1, len(CAMS) + 1))
    gt_ids = {int(line.split(",")[1]) for cam in CAMS for line in (scene / f"{cam}.gt.txt").read_text().splitlines()}
    assert {p for p, _ in q_keys} <= gt_ids


def test_metric_reads_either_case() -> None:
    assert _metric({"idf1": 0.5}, "idf1") == 0.5
    assert _metric({"IDF1": 0.25}, "idf1") == 0.25
    with pytest.raises(KeyError):
        _metric({"mota": 1.0}, "idf1")


def test_bad_settings_fail_before_any_work(tmp_path: Path) -> None:
    from reid_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="variant"):
        run_adaptation(replace(SMALL, variants=("plain", "both")), tmp_path / "w", log=lambda _: None)
    with pytest.raises(ConfigError, match="init"):
        run_adaptation(replace(SMALL, init="site_c"), tmp_path / "w", log=lambda _: None)
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_adapting_to_site_b_helps(tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores: no oversubscription stalls
    try:
        res = run_adaptation(SMALL, tmp_path, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    before, after = res["models"]["unadapted"], res["models"]["adapted"]
    table = format_table(res)
    assert res["harvest"]["total_crops"] > 200 and res["harvest"]["total_tracklets"] >= 10, table
    print(table)
    # the site's own people matched across its cameras by the deployed INT8 pipeline
    assert after["cross_camera_IDF1"] >= before["cross_camera_IDF1"] + IDF1_MARGIN, table
