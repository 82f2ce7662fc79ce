"""Camera fleet end to end: 2 edge processes x 2 cameras + 1 associator over a real redis-server
give the same global identities as one `run` over the 4 cameras, also through kill -9 of the
associator, kill -9 of an edge, and a Redis restart with AOF persistence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reid_edge.cli import main

from .fleet_support import RedisServer, free_port
from .test_pipeline import _colour_onnx

GATE = "0.5"  # with the colour fixture model: 9 identities, 4 of them across cameras, on this scene
CAMS = ("cam1", "cam2", "cam3", "cam4")
EDGES = {"A": CAMS[:2], "B": CAMS[2:]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated 4-camera scene with its det files, a real ONNX model, and the one-process run."""
    pytest.importorskip("redis", reason="the fleet extra is not installed (pip install 'reid-edge[fleet]')")
    from reid_edge.synth.scene import generate_scene

    root = tmp_path_factory.mktemp("fleet")
    generate_scene(root / "scene", cameras=4, people=6, seconds=14, seed=2)
    model = _colour_onnx(root / "colour.onnx")
    ref = root / "single"
    assert main(["run", "--cameras", *[str(root / "scene" / f"{c}.mp4") for c in CAMS], "--detections",
                 str(root / "scene"), "--model", str(model), "--out", str(ref), "--max-distance", GATE,
                 "--no-progress"]) == 0
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["num_identities"] >= 8 and summary["cross_camera_identities"] >= 2  # a scene worth comparing
    return {"root": root, "scene": root / "scene", "model": model, "ref": ref}


@pytest.fixture()
def redis_aof(tmp_path: Path):  # type: ignore[no-untyped-def]
    try:
        server = RedisServer(tmp_path / "redis", aof=True).start()
    except RuntimeError as exc:
        pytest.skip(f"cannot start redis-server: {exc}")
    yield server
    server.stop()


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "reid_edge", *args]


def _env() -> dict[str, str]:
    # faulthandler: a process that hangs is sent SIGABRT and leaves its stack in its log
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


def _edge(site: dict[str, Path], url: str, name: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    cams = [str(site["scene"] / f"{c}.mp4") for c in EDGES[name]]
    return subprocess.Popen(_cmd("run", "--cameras", *cams, "--detections", str(site["scene"]), "--model",
                                 str(site["model"]), "--out", str(out / name), "--no-progress", "--publish", url,
                                 "--edge-id", name, "--decision-wait", "90", *extra),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=open(out / f"{name}.log", "ab"))


def _associator(url: str, out: Path, tag: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_cmd("associate", "--redis", url, "--edges", "A", "B", "--max-distance", GATE,
                                 "--edge-timeout", "0", "--exit-when-done", "--summary", str(out / f"{tag}.json"),
                                 *extra),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=open(out / f"{tag}.log", "ab"))


def _wait(procs: list[subprocess.Popen[bytes]], out: Path, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            rc = p.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.send_signal(signal.SIGABRT)
            time.sleep(1.0)
            for q in procs:
                q.kill()
            logs = {f.name: f.read_text(errors="replace")[-1500:] for f in out.glob("*.log")}
            pytest.fail(f"fleet processes did not finish in {timeout}s: {logs}")
        assert rc == 0, {f.name: f.read_text(errors="replace")[-1500:] for f in out.glob("*.log")}


def _xlen(url: str, key: str) -> int:
    import redis

    from reid_edge.fleet.redis_transport import parse_redis_url

    u = parse_redis_url(url)
    try:
        return int(redis.Redis(host=u.host, port=u.port, db=u.db, socket_timeout=2).xlen(key))
    except redis.exceptions.ConnectionError:
        return 0


def _wait_batches(url: str, n: int, procs: list[subprocess.Popen[bytes]], timeout: float = 60.0,
                  key: str = "reid:batches") -> None:
    deadline = time.monotonic() + timeout
    while _xlen(url, key) < n:
        assert time.monotonic() < deadline, f"fewer than {n} batches decided in {timeout}s"
        assert all(p.poll() is None for p in procs), "a fleet process ended before the fault was injected"
        time.sleep(0.05)


def _identities(dirs: dict[str, Path]) -> tuple[dict[str, list[str]], dict[tuple[str, int], tuple]]:
    """Per camera: the sorted MOT rows (global ids included); per tracklet: its id, decision frame, distance."""
    rows: dict[str, list[str]] = {}
    events: dict[tuple[str, int], tuple] = {}
    for cam, d in dirs.items():
        rows[cam] = sorted((d / f"{cam}.txt").read_text().splitlines())
        for line in (d / "events.jsonl").read_text().splitlines():
            ev = json.loads(line)
            if ev["camera"] == cam:
                events[(cam, ev["track_id"])] = (ev["global_id"], ev["decided_at_frame"], ev["match_distance"],
                                                 ev["rows"])
    return rows, events


def _assert_same_as_single(site: dict[str, Path], out: Path) -> None:
    ref_rows, ref_events = _identities({c: site["ref"] for c in CAMS})
    rows, events = _identities({c: out / e for e, cams in EDGES.items() for c in cams})
    assert events == ref_events  # every tracklet, the same global id, decided at the same frame
    for cam in CAMS:
        assert rows[cam] == ref_rows[cam], cam
    for e in EDGES:
        fleet = json.loads((out / e / "summary.json").read_text())["fleet"]
        assert fleet["undecided_tracklets"] == 0 and fleet["outbox_left"] == 0, fleet


def test_fleet_equals_one_process(site: dict[str, Path], redis_aof: RedisServer, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    out.mkdir()
    procs = [_associator(redis_aof.url, out, "assoc"), _edge(site, redis_aof.url, "A", out),
             _edge(site, redis_aof.url, "B", out)]
    _wait(procs, out)
    _assert_same_as_single(site, out)
    stats = json.loads((out / "assoc.json").read_text())
    assert stats["num_identities"] == json.loads((site["ref"] / "summary.json").read_text())["num_identities"]


def test_associator_late_start_and_kill9_restart_with_gallery(site: dict[str, Path], redis_aof: RedisServer,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    out.mkdir()
    gallery = tmp_path / "gallery.sqlite"
    edges = [_edge(site, redis_aof.url, "A", out), _edge(site, redis_aof.url, "B", out)]
    time.sleep(1.0)  # the edges start without an associator: they publish and keep their rows pending
    first = _associator(redis_aof.url, out, "assoc1", "--gallery", str(gallery))
    _wait_batches(redis_aof.url, 25, [first, *edges])
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    time.sleep(0.5)
    second = _associator(redis_aof.url, out, "assoc2", "--gallery", str(gallery))
    _wait([second, *edges], out)
    _assert_same_as_single(site, out)  # the gallery started empty: the same ids as a plain run
    stats = json.loads((out / "assoc2.json").read_text())["stats"]
    assert stats["replayed_batches"] >= 25 and stats["replay_mismatches"] == 0

    # a new fleet session (another Redis database) with that gallery gives the ids a one-process
    # `run --gallery` gives after its own first session: known people keep their ids
    ref_gallery = tmp_path / "ref-gallery.sqlite"
    cams = [str(site["scene"] / f"{c}.mp4") for c in CAMS]
    common = ["--detections", str(site["scene"]), "--model", str(site["model"]), "--max-distance", GATE,
              "--no-progress", "--gallery", str(ref_gallery)]
    assert main(["run", "--cameras", *cams, "--out", str(tmp_path / "ref1"), *common]) == 0
    assert main(["run", "--cameras", *cams, "--out", str(tmp_path / "ref2"), *common]) == 0
    out2 = tmp_path / "fleet2"
    out2.mkdir()
    url2 = redis_aof.url[:-1] + "1"
    procs = [_associator(url2, out2, "assoc", "--gallery", str(gallery)), _edge(site, url2, "A", out2),
             _edge(site, url2, "B", out2)]
    _wait(procs, out2)
    _assert_same_as_single({**site, "ref": tmp_path / "ref2"}, out2)
    first_ids = {ev[0] for ev in _identities({c: site["ref"] for c in CAMS})[1].values()}
    assert {ev[0] for ev in _identities({c: tmp_path / "ref2" for c in CAMS})[1].values()} & first_ids


def test_edge_kill9_and_restart(site: dict[str, Path], redis_aof: RedisServer, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    out.mkdir()
    a, b = _edge(site, redis_aof.url, "A", out), _edge(site, redis_aof.url, "B", out)
    _wait_batches(redis_aof.url, 150, [a, b], key="reid:events")  # no associator yet: nothing decided
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    # the same command again (into the same folder): it delivers what its outbox kept, replays its
    # footage (those steps reach the associator while the originals still wait for their batches)
    # and goes on where it stopped; the associator, started now, decides everything in clock order
    a2 = _edge(site, redis_aof.url, "A", out, "--overwrite")
    _wait_batches(redis_aof.url, 260, [a2, b], key="reid:events")
    assoc = _associator(redis_aof.url, out, "assoc")
    _wait([a2, b, assoc], out)
    _assert_same_as_single(site, out)
    assert json.loads((out / "A" / "summary.json").read_text())["fleet"]["session"] == 2


def test_redis_restart_with_aof(site: dict[str, Path], redis_aof: RedisServer, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    out.mkdir()
    procs = [_associator(redis_aof.url, out, "assoc"), _edge(site, redis_aof.url, "A", out),
             _edge(site, redis_aof.url, "B", out)]
    _wait_batches(redis_aof.url, 40, procs)
    redis_aof.kill()  # kill -9: only what the AOF holds survives
    time.sleep(1.0)  # meanwhile the edges buffer on disk and everyone backs off
    redis_aof.start()
    _wait(procs, out)
    _assert_same_as_single(site, out)
    fleets = [json.loads((out / e / "summary.json").read_text())["fleet"] for e in EDGES]
    assert all(f["reconnects"] > 0 for f in fleets)


def test_publish_errors_are_one_line(site: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--cameras", str(site["scene"] / "cam1.mp4"), "--detections", str(site["scene"]), "--model",
            str(site["model"]), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*base, "--publish", "localhost:6379"]) == 2
    assert "is not a Redis URL" in capsys.readouterr().err
    assert main([*base, "--publish", f"redis://127.0.0.1:{free_port()}/0"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Redis server" in err and len(err.strip().splitlines()) == 1
    assert main(["associate", "--redis", "redis://127.0.0.1:notaport/0"]) == 2
    assert "is not a Redis URL" in capsys.readouterr().err
    assert main([*base, "--edge-id", "box1"]) == 2
    assert "need --publish" in capsys.readouterr().err
    assert main([*base, "--publish", "redis://127.0.0.1:6379/0", "--gallery", str(tmp_path / "g.sqlite")]) == 2
    assert "lives with the associator" in capsys.readouterr().err
