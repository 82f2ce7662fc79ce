"""benchmarks.mot15: the pipeline configuration it runs with (``--config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.mot15 import load_config
from reid_edge.pipeline.tracker import TrackerConfig


def test_config_defaults_and_yaml(tmp_path: Path) -> None:
    assert load_config(None).tracker == TrackerConfig()
    good = tmp_path / "good.yml"
    good.write_text("tracker:\n  max_appearance_dist: 1.2\n")
    assert load_config(good).tracker == TrackerConfig(max_appearance_dist=1.2)


@pytest.mark.parametrize("text", ["tracker:\n  no_such_field: 1\n", "tracker: [1, 2\n"])
def test_bad_config_is_a_one_line_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    with pytest.raises(SystemExit) as exc:
        load_config(bad)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        load_config(tmp_path / "missing.yml")
