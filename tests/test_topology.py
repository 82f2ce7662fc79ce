"""Camera topology learned without labels: travel-time windows from confident matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid_edge.cli import main
from reid_edge.errors import DataError
from reid_edge.pipeline.layout import load_layout
from reid_edge.pipeline.topology import DecidedTracklet, TopologyConfig, learn_layout, read_events, write_layout

from .test_pipeline import _colour_onnx
from .test_pipeline_support import make_scene


def _moves(n: int, src: str, dst: str, gap: float, jitter: float, distance: float, gid0: int) -> list[DecidedTracklet]:
    rng = np.random.default_rng(gid0)
    out = []
    for i in range(n):
        t = 100.0 * i
        g = float(gap + jitter * rng.uniform(-1, 1))
        out += [DecidedTracklet(gid0 + i, src, t, t + 5, None), DecidedTracklet(gid0 + i, dst, t + 5 + g, t + 9 + g,
                                                                                 distance)]
    return out


def test_windows_come_from_confident_moves_only(tmp_path: Path) -> None:
    tl = (_moves(20, "a", "b", 10.0, 2.0, 0.3, 0)  # a -> b takes 8..12 s, confidently matched
          + _moves(20, "b", "c", 50.0, 1.0, 0.9, 100)  # b -> c only from weak matches: no evidence
          + _moves(2, "c", "a", 5.0, 0.0, 0.2, 200))  # too few moves
    layout = learn_layout(tl, TopologyConfig(confident_distance=0.7, min_moves=3, margin=0.25, min_margin_s=1.0))
    assert [(t.src, t.dst) for t in layout.transitions] == [("a", "b")]
    (ab,) = layout.transitions
    assert 6.0 <= ab.min_s <= 8.2 and 11.8 <= ab.max_s <= 14.0
    assert layout.allowed("a", "b", 10) and not layout.allowed("a", "b", 30) and not layout.allowed("b", "c", 50)
    assert [c.name for c in layout.cameras] == ["a", "b", "c"]
    write_layout(layout, tmp_path / "l.yaml")
    back = load_layout(tmp_path / "l.yaml")
    assert back.transitions == layout.transitions and back.restrict_transitions
    opened = learn_layout(tl, TopologyConfig(unseen_pairs="allow"))
    assert opened.allowed("b", "c", 1e6) and not opened.allowed("a", "b", 30)
    write_layout(opened, tmp_path / "o.yaml")
    assert load_layout(tmp_path / "o.yaml").transitions == opened.transitions  # inf windows survive YAML


def test_layout_learn_command_on_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = tmp_path / "scene"
    make_scene(scene, people=4, frames=80)
    model = _colour_onnx(tmp_path / "colour.onnx")
    cams = [str(scene / "cam1.mp4"), str(scene / "cam2.mp4")]
    assert main(["run", "--cameras", *cams, "--detections", str(scene), "--model", str(model), "--out",
                 str(tmp_path / "r1"), "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["layout-learn", "--events", str(tmp_path / "r1"), "--out", str(tmp_path / "l.yaml"),
                 "--confident", "0.5"]) == 0
    assert "cam1 -> cam2" in capsys.readouterr().out
    layout = load_layout(tmp_path / "l.yaml")
    assert [(t.src, t.dst) for t in layout.transitions] == [("cam1", "cam2")]
    assert layout.allowed("cam1", "cam2", 0.8)  # people take 0.8 s from cam1 to cam2 in this scene
    assert main(["layout-learn", "--events", str(tmp_path / "r1"), "--out", str(tmp_path / "l.yaml")]) == 2
    assert "exists" in capsys.readouterr().err
    with pytest.raises(DataError):
        read_events(tmp_path / "nothing")
