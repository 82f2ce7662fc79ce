"""The one-command demo at a small size: every stage runs and the report holds the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reid_edge.cli import main


@pytest.mark.slow
def test_demo_small_site_end_to_end(tmp_path: Path) -> None:
    from reid_edge.demo import DemoConfig, run_demo

    cfg = DemoConfig(out=tmp_path / "demo", epochs=2, warmup_epochs=1, train_people=6, train_seconds=24,
                     test_people=4, test_seconds=20, eval_ids=16, batch_size=8, k=3, m=40, calib_size=16,
                     min_cosine=0.6)
    result = run_demo(cfg, log=lambda m: None)
    head = json.loads((cfg.out / "numbers.json").read_text())["summary"]
    # every headline figure is present and in range
    assert head["crops"] > 20 and head["tracklets"] >= 4
    assert 0.0 <= head["mAP_fp32"] <= 1.0
    assert set(head["mAP_int8"]) == {"int8-qdq-trt", "int8-qdq-cpu"}
    for name, value in head["mAP_int8"].items():
        assert 0.0 <= value <= 1.0, name
        assert head["cosine"][name] > cfg.min_cosine, (name, head["cosine"])
    assert 0.0 <= head["cross_camera_IDF1"] <= 1.0
    assert all(0.5 <= v["MOTA"] <= 1.0 for v in head["per_camera"].values()), head["per_camera"]
    assert set(head["fps"]) == {"cam1", "cam2"} and all(v > 0 for v in head["fps"].values())
    # the report shows those same numbers, and the artifacts it links to exist
    md = result.report_md.read_text()
    assert f"{head['cross_camera_IDF1']:.3f}" in md and f"{head['mAP_fp32']:.3f}" in md
    assert (cfg.out / "train" / "curves.png").is_file()
    assert sorted(p.name for p in (cfg.out / "mtmc").glob("*.annotated.mp4")) == [
        "cam1.annotated.mp4", "cam2.annotated.mp4"]
    assert "<table>" in result.report_html.read_text()


def test_demo_refuses_a_non_empty_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert main(["demo", "--out", str(tmp_path / "x"), "--epochs", "0"]) == 2
