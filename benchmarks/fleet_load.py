"""Load of the fleet's central associator: generated tracklet events from 64+ cameras.

Edge boxes are simulated in this process with the real edge code (``RemoteAssociator`` ->
on-disk outbox -> Redis Streams), fed *generated* tracklets instead of video: people arrive at
each group of cameras, walk through 2-3 of its cameras (4-12 s in view, 1-5 s between), and are
embedded every ``--embed-every`` frames as noisy copies of a per-person random unit vector
(``--dim`` global, ``--stripes`` stripes). Each camera step sends what the pipeline sends: a
decide event once a tracklet has lived 2 s (or ended), then an update every frame (end time,
appearance when re-embedded), a final update when it ends. The central side is the real
``reid-edge associate`` process on a redis-server started here (127.0.0.1, free port).

Two phases:

1. **throughput**: every edge publishes its whole timeline first; then the associator starts
   and works the backlog off. Events/s = tracklet events (decide + update) / associator run time.
2. **latency**: the edges replay in real time (``--speed`` x) with the associator running;
   latency = from the edge closing the step that asks for a decision to the decision arriving
   back at that edge (includes waiting for every edge's watermark), p50/p95/max.

The numbers are for generated events, not footage: they measure the transport and the
association service, not detection or embedding.

Examples:
    python -m benchmarks.fleet_load
    python -m benchmarks.fleet_load --edges 32 --seconds 60 --json results/fleet_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_edge.distance import unit_rows
from reid_edge.fleet.edge import EdgeConfig, EdgeLink, RemoteAssociator
from reid_edge.fleet.redis_transport import connect
from reid_edge.io import atomic_write_json
from reid_edge.pipeline.associate import TrackletEvent
from tests.fleet_support import RedisServer


@dataclass
class Visit:
    event_id: str
    person: int
    camera: str
    start: int  # frame
    end: int  # frame (inclusive)
    g: np.ndarray | None = None
    s: np.ndarray | None = None
    weight: float = 0.0
    count: int = 0
    submitted: bool = False


@dataclass
class EdgeTimeline:
    name: str
    cameras: list[str]
    visits: list[Visit] = field(default_factory=list)


def generate(edges: int, per_edge: int, seconds: float, fps: float, every_s: float, seed: int) -> list[EdgeTimeline]:
    """Each edge is a group of ``per_edge`` cameras that its people walk through."""
    rng = np.random.default_rng(seed)
    out = []
    person = 0
    frames = int(seconds * fps)
    for e in range(edges):
        cams = [f"e{e:02d}c{c}" for c in range(per_edge)]
        tl = EdgeTimeline(f"e{e:02d}", cams)
        t = float(rng.uniform(0, every_s))
        while t < seconds - 3:
            route = rng.choice(per_edge, size=int(rng.integers(2, 4)), replace=False)
            s = t
            for k, c in enumerate(route):
                dwell = float(rng.uniform(4, 12))
                start, end = int(s * fps), min(int((s + dwell) * fps), frames - 1)
                if end - start >= 5:
                    tl.visits.append(Visit(f"{cams[c]}/{person}.{k}", person, cams[c], start, end))
                s += dwell + float(rng.uniform(1, 5))
            person += 1
            t += float(rng.exponential(every_s))
        out.append(tl)
    return out


class Driver:
    """Plays one edge's timeline into a RemoteAssociator, step by step, as the pipeline would."""

    def __init__(self, tl: EdgeTimeline, ra: RemoteAssociator, dim: int, stripes: int, fps: float, embed_every: int,
                 noise: float, seed: int) -> None:
        self.tl, self.ra, self.fps, self.embed_every, self.noise = tl, ra, fps, embed_every, noise
        self.dim, self.stripes = dim, stripes
        self.rng = np.random.default_rng(seed)
        self.people: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.by_start: dict[int, list[Visit]] = {}
        for v in tl.visits:
            self.by_start.setdefault(v.start, []).append(v)
        self.active: list[Visit] = []
        self.submitted_at: dict[str, float] = {}
        self.events = 0

    def _person(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        if p not in self.people:
            prng = np.random.default_rng(10_000 + p)
            self.people[p] = (unit_rows(prng.normal(size=self.dim)),
                              unit_rows(prng.normal(size=(self.stripes, self.dim // self.stripes))))
        return self.people[p]

    def _embed(self, v: Visit) -> None:
        pg, ps = self._person(v.person)
        q = float(self.rng.uniform(0.3, 1.0))
        g = unit_rows(pg + self.noise * self.rng.normal(size=pg.shape) / np.sqrt(pg.size)) * q
        s = unit_rows(ps + self.noise * self.rng.normal(size=ps.shape) / np.sqrt(ps.shape[-1])) * q
        v.g = g if v.g is None else v.g + g
        v.s = s if v.s is None else v.s + s
        v.weight += q
        v.count += 1

    def step(self, frame: int) -> None:
        self.active.extend(self.by_start.pop(frame, []))
        clock = frame / self.fps
        decide: list[TrackletEvent] = []
        keep = []
        for v in self.active:
            if (frame - v.start) % self.embed_every == 0:
                self._embed(v)
            ended = frame >= v.end
            ev = TrackletEvent(v.event_id, v.camera, v.start / self.fps, clock, v.g, v.s, v.weight, ended)
            if v.submitted:
                self.ra.update(ev)
                self.events += 1
            elif ended or (clock - v.start / self.fps >= 2.0 and v.count > 0):
                decide.append(ev)
                v.submitted = True
            if not ended:
                keep.append(v)
        self.active = keep
        if decide:
            self.ra.decide(decide)
            self.events += len(decide)
            now = time.monotonic()
            for ev in decide:
                self.submitted_at[ev.event_id] = now
        self.ra.end_step(clock)


def _links(url: str, prefix: str, timelines: list[EdgeTimeline], workdir: Path, args: argparse.Namespace
           ) -> list[Driver]:
    drivers = []
    for i, tl in enumerate(timelines):
        cfg = EdgeConfig(tl.name, tuple(tl.cameras), workdir / f"{prefix}-{tl.name}.sqlite")
        link = EdgeLink(connect(url, "--publish", prefix=prefix), cfg)
        ra = RemoteAssociator(link)
        ra.start(0.5, args.dim)
        drivers.append(Driver(tl, ra, args.dim, args.stripes, args.fps, args.embed_every, args.noise, args.seed + i))
    return drivers


def _associator(url: str, prefix: str, edges: list[str], summary: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen([sys.executable, "-m", "reid_edge", "associate", "--redis", url, "--prefix", prefix,
                             "--edges", *edges, "--edge-timeout", "0", "--exit-when-done", "--summary", str(summary)],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))


def _pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p)) if xs else float("nan")


def throughput(url: str, timelines: list[EdgeTimeline], workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    drivers = _links(url, "tput", timelines, workdir, args)
    frames = int(args.seconds * args.fps)
    t0 = time.perf_counter()
    for f in range(frames):
        for d in drivers:
            d.step(f)
    for d in drivers:
        d.ra.finish(frames / args.fps, 0.0)
        d.ra.link.drain(300)
    produce_s = time.perf_counter() - t0
    for d in drivers:
        d.ra.close()
    events = sum(d.events for d in drivers)
    summary = workdir / "tput.json"
    t1 = time.perf_counter()
    proc = _associator(url, "tput", [t.name for t in timelines], summary, workdir / "tput.log")
    rc = proc.wait()
    wall = time.perf_counter() - t1
    if rc != 0:
        raise SystemExit(f"associator failed: {(workdir / 'tput.log').read_text()[-2000:]}")
    stats = json.loads(summary.read_text())["stats"]
    return {"events": events, "decisions": stats["decisions"], "batches": stats["batches"],
            "publish_seconds": round(produce_s, 2), "associator_run_seconds": round(stats["run_seconds"], 2),
            "associator_process_seconds": round(wall, 2),
            "events_per_s": round(stats["events"] / stats["run_seconds"], 1),
            "associator_cpu_seconds": round(stats.get("cpu_seconds", float("nan")), 2),
            "events_per_cpu_s": round(stats["events"] / stats.get("cpu_seconds", float("nan")), 1),
            "decisions_per_s": round(stats["decisions"] / stats["run_seconds"], 1),
            "decide_seconds": round(stats["decide_seconds"], 2), "commit_seconds": round(stats["commit_seconds"], 2),
            "identities": json.loads(summary.read_text())["num_identities"]}


def latency(url: str, timelines: list[EdgeTimeline], workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    summary = workdir / "lat.json"
    proc = _associator(url, "lat", [t.name for t in timelines], summary, workdir / "lat.log")
    drivers = _links(url, "lat", timelines, workdir, args)
    frames = int(args.latency_seconds * args.fps)
    t0 = time.monotonic()
    behind = 0
    for f in range(frames):
        target = t0 + f / args.fps / args.speed
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            behind += 1
        for d in drivers:
            d.step(f)
    wall = time.monotonic() - t0
    for d in drivers:
        d.ra.finish(frames / args.fps, 120.0)
    lat = []
    for d in drivers:
        for eid, t in d.submitted_at.items():
            got = d.ra.link.arrived_at.get(eid)
            if got is not None:
                lat.append(got - t)
    missing = sum(len(d.submitted_at) for d in drivers) - len(lat)
    for d in drivers:
        d.ra.close()
    proc.wait(120)
    events = sum(d.events for d in drivers)
    return {"events": events, "offered_events_per_s": round(events / wall, 1),
            "decisions": len(lat), "missing_decisions": missing, "steps_behind_schedule": behind,
            "latency_p50_ms": round(1000 * _pct(lat, 50), 1), "latency_p95_ms": round(1000 * _pct(lat, 95), 1),
            "latency_max_ms": round(1000 * max(lat), 1) if lat else float("nan")}


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=16)
    ap.add_argument("--cameras-per-edge", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="site time of the throughput backlog")
    ap.add_argument("--latency-seconds", type=float, default=30.0, help="site time replayed in real time")
    ap.add_argument("--speed", type=float, default=1.0, help="latency phase: site seconds per wall second")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--people-every", type=float, default=1.0, help="mean seconds between arrivals per edge")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--stripes", type=int, default=4)
    ap.add_argument("--embed-every", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.3)
    ap.add_argument("--aof", action="store_true", help="Redis with appendonly + fsync always (production setting)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    def timelines() -> list[EdgeTimeline]:  # fresh per phase: the drivers fill the visits in
        return generate(args.edges, args.cameras_per_edge, max(args.seconds, args.latency_seconds), args.fps,
                        args.people_every, args.seed)

    with tempfile.TemporaryDirectory(prefix="fleet-load-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis", aof=args.aof).start()
        try:
            tp = throughput(server.url, timelines(), work, args)
            print(f"throughput: {tp}", flush=True)
            lt = latency(server.url, timelines(), work, args)
            print(f"latency: {lt}", flush=True)
        finally:
            server.stop()
    result: dict[str, object] = {
        "cameras": args.edges * args.cameras_per_edge, "edges": args.edges, "fps": args.fps, "dim": args.dim,
        "stripes": args.stripes, "aof": args.aof, "throughput": tp, "latency": lt,
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
