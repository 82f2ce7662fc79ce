"""Trainer orchestration: config loading, data checks, exact resume, DDP bank sync, the train CLI."""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid_edge.config import load_yaml
from reid_edge.errors import CheckpointError, ConfigError, DataError
from reid_edge.train.checkpoint import load_checkpoint
from reid_edge.train.config import DEFAULT_RUN_DIR, TrainConfig, default_calib_holdout, lr_at
from reid_edge.train.method import MethodConfig
from reid_edge.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _crops(root: Path, n: int = 24, cams: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)
        img[:16] = rng.integers(0, 255, 3)
        path = root / f"cam{i % cams + 1}" / f"{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
    return root


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(data=str(data), out=str(out), backbone="resnet18", epochs=2, batch_size=4,
                                   height=32, width=16, num_stripes=2, embed_dim=16, workers=0, eval_every=0,
                                   calib_holdout=2, method=MethodConfig(k=2, m=6, warmup_epochs=1))
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_config_defaults_and_yaml(tmp_path: Path) -> None:
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.epochs) == (8, 1e-3, 0.9, 5e-4, 50)
    assert (cfg.height, cfg.width, cfg.num_stripes, cfg.embed_dim, cfg.last_stride) == (256, 128, 8, 2048, 1)
    assert cfg.method == MethodConfig() and DEFAULT_RUN_DIR == Path("runs/train")
    y = tmp_path / "c.yml"
    y.write_text("backbone: resnet18\nepochs: 3\nmethod:\n  lambda_c: 0.0\n  k: 4\n")
    cfg = load_yaml(TrainConfig, y, {"epochs": 7, "seed": None})
    assert cfg.backbone == "resnet18" and cfg.epochs == 7 and cfg.method.lambda_c == 0.0 and cfg.method.k == 4
    y.write_text("method:\n  lamda_c: 0.1\n")
    with pytest.raises(ConfigError, match="lambda_c"):
        load_yaml(TrainConfig, y)
    y.write_text("batch_sise: 4\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_yaml(TrainConfig, y)
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=1)
    assert default_calib_holdout(100) == 10 and default_calib_holdout(5000) == 100
    assert default_calib_holdout(100000) == 256


def test_one_camera_needs_lambda_c_zero(tmp_path: Path) -> None:
    data = _crops(tmp_path / "d", n=12, cams=1)
    with pytest.raises(DataError, match="one camera.*lambda_c"):
        train(_cfg(data, tmp_path / "run"), show_progress=False)


def _state(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    return {"model": ckpt["model"], "method": ckpt["method"], "optimizer": ckpt["optimizer"]["state"],
            "epoch": ckpt["epoch"]}


def _assert_same(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"]
    for part in ("model", "method"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for k, v in a["optimizer"].items():
        assert torch.equal(v["momentum_buffer"], b["optimizer"][k]["momentum_buffer"])


def test_resume_is_exact(tmp_path: Path) -> None:
    data = _crops(tmp_path / "d")
    full = train(_cfg(data, tmp_path / "full"), show_progress=False, log=lambda m: None)
    assert full.last_checkpoint.is_file() and (tmp_path / "full" / "log.csv").is_file()
    assert (tmp_path / "full" / "curves.png").is_file()
    train(_cfg(data, tmp_path / "split", epochs=1), show_progress=False, log=lambda m: None)
    one = load_checkpoint(tmp_path / "split" / "last.pt")
    assert one["epoch"] == 1 and len(one["calibration_images"]) == 2
    with pytest.raises(CheckpointError, match="--resume"):
        train(_cfg(data, tmp_path / "split"), show_progress=False, log=lambda m: None)
    train(_cfg(data, tmp_path / "split"), resume=True, show_progress=False, log=lambda m: None)
    _assert_same(_state(tmp_path / "full" / "last.pt"), _state(tmp_path / "split" / "last.pt"))
    rows = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3
    # a different dataset is refused
    (data / "cam1" / "000.jpg").unlink()
    with pytest.raises(CheckpointError, match="fingerprint"):
        train(_cfg(data, tmp_path / "split", epochs=3), resume=True, show_progress=False, log=lambda m: None)


def test_lr_steps_follow_the_schedule_across_a_resume(tmp_path: Path) -> None:
    cfg = TrainConfig(lr=1e-3, lr_steps=(2, 4), lr_gamma=0.5)
    assert [lr_at(cfg, e) for e in range(6)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    assert lr_at(TrainConfig(), 49) == 1e-3  # the paper's constant rate by default
    with pytest.raises(ConfigError, match="lr_gamma"):
        TrainConfig(lr_gamma=0.0)
    with pytest.raises(ConfigError, match="lr_steps"):
        load_yaml(TrainConfig, None, {"lr_steps": [0]})
    with pytest.raises(ConfigError, match="--whole-model"):
        TrainConfig(pretrained="imagenet", pretrained_whole=True)
    data = _crops(tmp_path / "d")
    quiet = dict(show_progress=False, log=lambda m: None)
    train(_cfg(data, tmp_path / "full", epochs=3, lr_steps=(2,)), **quiet)  # type: ignore[arg-type]
    # a run without the step, then resumed with it: the schedule applies from the step on, as in one run
    train(_cfg(data, tmp_path / "split", epochs=2), **quiet)  # type: ignore[arg-type]
    train(_cfg(data, tmp_path / "split", epochs=3, lr_steps=(2,)), resume=True, **quiet)  # type: ignore[arg-type]
    _assert_same(_state(tmp_path / "full" / "last.pt"), _state(tmp_path / "split" / "last.pt"))
    lrs = [float(r.split(",")[8]) for r in (tmp_path / "split" / "log.csv").read_text().splitlines()[1:]]
    assert lrs == [1e-3, 1e-3, 1e-4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_world_size_one_matches_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    data = _crops(tmp_path / "d", n=16)
    plain = train(_cfg(data, tmp_path / "plain", epochs=1), show_progress=False, log=lambda m: None)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        ddp = train(_cfg(data, tmp_path / "ddp", epochs=1), show_progress=False, log=lambda m: None)
    finally:
        dist.destroy_process_group()
    a, b = _state(plain.last_checkpoint), _state(ddp.last_checkpoint)
    for k in a["method"]:
        assert torch.allclose(a["method"][k].float(), b["method"][k].float(), atol=1e-5), k


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    import os

    import torch.distributed as dist

    from reid_edge.train.trainer import Trainer

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        trainer = Trainer(_cfg(Path(data), Path(out), epochs=2), show_progress=False, log=lambda m: None)
        trainer.run()
        torch.save(trainer.method.state_dict(), Path(out).parent / f"banks{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_ranks_keep_identical_banks(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    data = _crops(tmp_path / "d", n=18)
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(data), str(tmp_path / "run"))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    results = [torch.load(tmp_path / f"banks{r}.pt", weights_only=True) for r in range(2)]
    for k in results[0]:
        assert torch.equal(results[0][k], results[1][k]), k
    assert bool(results[0]["filled"].all())
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2


def test_train_cli(tmp_path: Path, market_mini: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.cli import main

    out = tmp_path / "run"
    cfg = tmp_path / "c.yml"
    cfg.write_text("num_stripes: 2\nembed_dim: 16\nmethod:\n  k: 2\n  m: 8\n  warmup_epochs: 1\n")
    args = ["train", "--data", str(market_mini), "--out", str(out), "--config", str(cfg), "--backbone", "resnet18",
            "--epochs", "1", "--batch-size", "8", "--height", "32", "--width", "16", "--device", "cpu",
            "--eval-every", "1", "--workers", "0", "--seed", "1"]
    assert main(args) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "random initialization" in captured.err and "done:" in captured.out
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["history"][0]["mAP"] is not None and 0 <= ckpt["history"][0]["mAP"] <= 1
    assert ckpt["train_config"]["seed"] == 1 and ckpt["train_config"]["method"]["k"] == 2
    # resume with only --out/--epochs: the stored config is reused
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--eval-every", "0"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    assert main(["train", "--data", str(market_mini), "--out", str(tmp_path / "r2"), "--backbone", "vgg"]) == 2
    assert "--backbone" in capsys.readouterr().err
    # that run's whole model carried to another run (a new site); a checkpoint of another model is exit 2
    whole = ["train", "--data", str(market_mini), "--config", str(cfg), "--backbone", "resnet18", "--epochs", "1",
             "--height", "32", "--width", "16", "--eval-every", "0", "--workers", "0",
             "--pretrained", str(out / "last.pt"), "--whole-model"]
    assert main([*whole, "--out", str(tmp_path / "r3")]) == 0
    assert "starting from the whole model" in capsys.readouterr().err
    assert main([*whole, "--out", str(tmp_path / "r4"), "--embed-dim", "32"]) == 2
    assert "not a reid-edge checkpoint of this model" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_mid_epoch_keeps_finished_epochs(tmp_path: Path) -> None:
    """SIGKILL during an epoch: last.pt still loads and holds every finished epoch; --resume completes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = _crops(tmp_path / "d", n=240)
    out = tmp_path / "run"
    cfg = tmp_path / "c.yml"
    cfg.write_text("num_stripes: 2\nembed_dim: 16\ncalib_holdout: 2\nmethod:\n  k: 2\n  m: 6\n  warmup_epochs: 1\n")
    argv = [sys.executable, "-m", "reid_edge", "train", "--data", str(data), "--out", str(out), "--config", str(cfg),
            "--backbone", "resnet18", "--epochs", "6", "--batch-size", "4", "--height", "32", "--width", "16",
            "--device", "cpu", "--eval-every", "0", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        first = out / "last.pt"
        while not first.is_file():  # wait for the first finished epoch
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        done = load_checkpoint(first)["epoch"]
        time.sleep(0.3)  # an epoch of 60 steps takes seconds: this lands mid-epoch
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    kept = load_checkpoint(out / "last.pt")
    assert 1 <= done <= kept["epoch"] < 6
    assert len(kept["history"]) == kept["epoch"]
    assert len((out / "log.csv").read_text().splitlines()) == kept["epoch"] + 1
    resumed = subprocess.run([*argv[:3], "train", "--out", str(out), "--resume"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = load_checkpoint(out / "last.pt")
    assert final["epoch"] == 6 and len(final["history"]) == 6
