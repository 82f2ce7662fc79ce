"""``reid-edge bench`` and its timing core."""

from __future__ import annotations

import json

import pytest

from reid_edge.cli import main
from reid_edge.errors import ConfigError

from .test_export_support import Tiny, tiny


@pytest.fixture(scope="session")
def t(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return tiny(tmp_path_factory)


def test_parse_batches() -> None:
    from reid_edge.deploy.bench import parse_batches

    assert parse_batches("1,8,32") == [1, 8, 32] and parse_batches(" 4 ") == [4]
    for bad in ("", "0", "a", "1,-2"):
        with pytest.raises(ConfigError):
            parse_batches(bad)


def test_latency_stats_hand_checked() -> None:
    from reid_edge.deploy.bench import latency_stats

    p50, p95, mean, tput = latency_stats([0.1, 0.2, 0.3, 0.4, 0.5], batch=8)
    assert p50 == pytest.approx(300.0) and mean == pytest.approx(300.0)
    assert p95 == pytest.approx(480.0) and tput == pytest.approx(8 / 0.3)
    with pytest.raises(ConfigError):
        latency_stats([], 1)


def test_bench_cli_table_and_json(t: Tiny, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", str(t.onnx), str(t.checkpoint), "--batch", "1,2", "--iterations", "2", "--warmup", "1",
               "--device", "cpu", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "crops/s" in printed and "model.onnx" in printed
    data = json.loads(out.read_text())
    rows = data["results"]
    assert [(r["model"], r["batch"]) for r in rows] == [("model.onnx", 1), ("model.onnx", 2),
                                                        ("last.pt", 1), ("last.pt", 2)]
    assert {r["backend"] for r in rows} == {"onnxruntime", "pytorch"}
    assert all(r["p95_ms"] >= r["p50_ms"] > 0 and r["crops_per_s"] > 0 for r in rows)


def test_bench_bad_input_exit_2(t: Tiny, tmp_path, capsys) -> None:
    assert main(["bench", str(tmp_path / "missing.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", str(t.onnx), "--batch", "0"]) == 2
    assert "positive" in capsys.readouterr().err
    assert main(["bench", str(t.onnx), "--iterations", "0", "--batch", "1"]) == 2
    assert "--iterations" in capsys.readouterr().err
