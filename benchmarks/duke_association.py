"""Cross-camera association at real scale: DukeMTMC-reID replayed through the Associator.

DukeMTMC-reID crops come from 8 synchronised cameras (60 fps) of the DukeMTMC footage, one crop
per person every 120 frames; the file name ``PPPP_cC_fFFFFFFF.jpg`` carries the identity, the
camera and the camera's local frame. The benchmark puts every crop on one clock with the
DukeMTMC devkit's start times (``evaluateDukeMTMC.m``: ``startTimes = [5543, 3607, 27244,
31182, 1, 22402, 18968, 46766]``, global frame = local frame + startTimes(cam) - 1), groups each
identity's crops per camera into tracklets (a gap longer than ``--split-gap`` seconds starts a
new tracklet), and replays them in time order through the same
:class:`~reid_edge.pipeline.associate.Associator` that ``reid-edge run`` uses: a tracklet is
sent when :func:`~reid_edge.pipeline.associate.readiness` says so (2 s with an embedding, or at
its end), everything ready at one instant is one round, decided tracklets are updated as new
crops arrive. Identity labels are used only for scoring.

Scores (every crop is one box; detection is perfect by construction, so only association is
measured):

- cross-camera IDF1 at box level: a one-to-one matching of true and predicted identities over
  all cameras, IDF1 = 2·IDTP / (boxes_true + boxes_pred) (as the devkit's multi-camera IDF1);
- HOTA's association accuracy AssA = mean over boxes of |TPA| / (|TPA| + |FNA| + |FPA|)
  (with perfect boxes HOTA's localisation thresholds all give the same value);
- predicted vs true identity count, and the time per decision.

``--camera-centre`` also replays with per-camera centred embeddings: each camera's mean
embedding over the ``bounding_box_train/`` crops (identities unused) is subtracted from every crop
of that camera, which is then renormalised (``reid-edge eval --camera-centre`` does the same for
retrieval). ``reid-edge run`` does not do this: a measurement of what it would give.

Usage::

    python -m benchmarks.duke_association --data /path/to/DukeMTMC-reID \\
        --model models/person-reidentification-retail-0288.onnx [--model runs/train/export/model.onnx] \\
        [--learn-layout] [--camera-centre] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reid_edge.io import atomic_write_text
from reid_edge.pipeline.associate import (
    AssociationConfig,
    Associator,
    TrackletEvent,
    readiness,
    resolve_gate,
    resolve_same_camera_gate,
)
from reid_edge.pipeline.layout import CameraLayout
from reid_edge.pipeline.topology import DecidedTracklet, TopologyConfig, layout_to_yaml, learn_layout

from .duke_embed import embed_all, resolve_model

# DukeMTMC devkit (evaluateDukeMTMC.m): global frame = local frame + START_TIMES[cam - 1] - 1
START_TIMES = (5543, 3607, 27244, 31182, 1, 22402, 18968, 46766)
FPS = 60.0
SAMPLE_FRAMES = 120  # DukeMTMC-reID took one crop per person every 120 frames


@dataclass(frozen=True)
class Crop:
    pid: int
    camera: int
    frame: int  # local
    index: int  # row in the embedding matrix

    @property
    def time_s(self) -> float:
        return (self.frame + START_TIMES[self.camera - 1] - 1) / FPS


def parse_name(name: str) -> tuple[int, int, int]:
    """``0005_c2_f0046985.jpg`` -> ``(5, 2, 46985)``."""
    pid, cam, frame = name.split(".")[0].split("_")[:3]
    return int(pid), int(cam[1:]), int(frame[1:])


@dataclass
class Track:
    """A ground-truth tracklet replayed online."""

    key: str
    camera: str
    crops: list[Crop]
    seen: int = 0  # crops revealed so far
    g: np.ndarray | None = None
    decided: int | None = None
    distance: float | None = None
    sent: tuple[int, bool] | None = None
    ended: bool = False

    def event(self, times: list[float]) -> TrackletEvent:
        return TrackletEvent(self.key, self.camera, times[0], times[self.seen - 1], self.g, None, float(self.seen),
                             self.ended)


def build_tracklets(names: list[str], split_gap_s: float) -> list[Track]:
    by: dict[tuple[int, int], list[Crop]] = defaultdict(list)
    for i, n in enumerate(names):
        pid, cam, frame = parse_name(n)
        by[(pid, cam)].append(Crop(pid, cam, frame, i))
    out: list[Track] = []
    for (pid, cam), crops in sorted(by.items()):
        crops.sort(key=lambda c: c.frame)
        part: list[Crop] = []
        for c in crops:
            if part and c.time_s - part[-1].time_s > split_gap_s:
                out.append(Track(f"{pid}/c{cam}/{len(out)}", f"c{cam}", part))
                part = []
            part.append(c)
        out.append(Track(f"{pid}/c{cam}/{len(out)}", f"c{cam}", part))
    return out


@dataclass
class Replay:
    decisions: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    decide_ms: list[float] = field(default_factory=list)
    live: list[int] = field(default_factory=list)  # identities when each round was decided
    rounds: int = 0
    wall_s: float = 0.0


def replay(tracks: list[Track], feats: np.ndarray, config: AssociationConfig, layout: CameraLayout | None,
           top_k: int = 32) -> Replay:
    """Feed the tracklets in time order through one Associator (online: only crops seen so far)."""
    for t in tracks:
        t.seen, t.g, t.decided, t.distance, t.sent, t.ended = 0, None, None, None, None, False
    # global embeddings only (lambda_g 1): the default model has no stripes
    assoc = Associator(config, 1.0, feats.shape[1], layout, top_k=top_k)
    timeline: dict[float, list[tuple[Track, int]]] = defaultdict(list)
    for t in tracks:
        for j, c in enumerate(t.crops):
            timeline[c.time_s].append((t, j))
    times = {t.key: [c.time_s for c in t.crops] for t in tracks}
    res = Replay()
    active: dict[str, Track] = {}
    t_start = time.perf_counter()
    for now in sorted(timeline):
        for t, j in timeline[now]:
            t.seen = j + 1
            v = feats[t.crops[j].index].astype(np.float64)
            t.g = v if t.g is None else t.g + v
            t.ended = t.seen == len(t.crops)
            active[t.key] = t
        ready = []
        for key in list(active):
            t = active[key]
            tt = times[key]
            if t.decided is not None:
                if t.sent != (t.seen, t.ended):
                    assoc.update(t.event(tt))
                    t.sent = (t.seen, t.ended)
            else:
                # a crop stands for the SAMPLE_FRAMES frames around it: never dropped as a short track
                state = readiness(tt[t.seen - 1] - tt[0], t.seen, t.seen * SAMPLE_FRAMES, t.ended, config)
                if state == "decide":
                    ready.append(t)
            if t.ended and (t.decided is not None or t in ready):
                del active[key]
        if ready:
            n_before = len(assoc)
            t0 = time.perf_counter()
            decs = assoc.decide([t.event(times[t.key]) for t in ready])
            dt = time.perf_counter() - t0
            res.decide_ms.append(1000 * dt / len(ready))
            res.live.append(n_before)
            res.rounds += 1
            for t, d in zip(ready, decs):
                t.decided, t.distance = d.global_id, d.distance
                t.sent = (t.seen, t.ended)
                res.decisions[t.key] = (d.global_id, d.distance)
    res.wall_s = time.perf_counter() - t_start
    return res


def score(tracks: list[Track], decisions: dict[str, tuple[int, float | None]]) -> dict[str, Any]:
    """Box-level cross-camera IDF1, AssA and identity counts."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix

    gt, pr = [], []
    for t in tracks:
        gid = decisions[t.key][0]
        for c in t.crops:
            gt.append(c.pid)
            pr.append(gid)
    g_ids, g = np.unique(np.asarray(gt), return_inverse=True)
    p_ids, p = np.unique(np.asarray(pr), return_inverse=True)
    n = len(g)
    cont = coo_matrix((np.ones(n), (g, p)), shape=(len(g_ids), len(p_ids))).toarray()
    rows, cols = linear_sum_assignment(-cont)
    idtp = float(cont[rows, cols].sum())
    ng, npred = cont.sum(1), cont.sum(0)
    nz = cont > 0
    inter = cont[nz]
    union = (ng[:, None] + npred[None, :] - cont)[nz]
    assa = float((inter * inter / union).sum() / n)
    return {"boxes": n, "idf1": 2 * idtp / (2 * n), "assa": assa, "true_identities": int(len(g_ids)),
            "predicted_identities": int(len(p_ids)), "tracklets": len(tracks)}


def model_gates(model: Path) -> tuple[float, float | None]:
    """The gate and the same-camera gate ``reid-edge run`` would use with this model (its card's,
    else the defaults)."""
    from reid_edge.card import read_card
    from reid_edge.errors import CheckpointError

    card = None
    if model.suffix == ".onnx":
        try:
            card = read_card(model)
        except CheckpointError:
            card = None
    return resolve_gate(None, card)[0], resolve_same_camera_gate(None, card)[0]


def _gate_or_none(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a distance or 'none'") from None


def centre_by_camera(names: list[str], feats: np.ndarray, train: set[str]) -> np.ndarray:
    """``feats`` with each camera's mean over the crops named in ``train`` subtracted, renormalised."""
    from reid_edge.evaluation import camera_centre, camera_means

    cams = np.array([parse_name(n)[1] for n in names])
    sel = np.array([n in train for n in names])
    return camera_centre(feats, cams, camera_means(feats[sel], cams[sel]))


def run_model(model: Path, tracks: list[Track], feats: np.ndarray, config: AssociationConfig, learn: bool,
              topo: TopologyConfig, layout_out: Path | None, centre: bool = False) -> list[dict[str, Any]]:
    """Replay ``tracks`` with ``feats`` (plain, or centred when ``centre``) at ``config``'s gates."""
    rows = []
    gate = config.max_distance
    assert gate is not None
    res = replay(tracks, feats, config, None)
    rows.append(_row(model, "none", tracks, res, gate, config.same_camera_max_distance, centre))
    if learn:
        decided = [DecidedTracklet(res.decisions[t.key][0], t.camera, t.crops[0].time_s, t.crops[-1].time_s,
                                   res.decisions[t.key][1]) for t in tracks]
        layout = learn_layout(decided, topo)
        if layout_out is not None:
            atomic_write_text(layout_out, layout_to_yaml(layout))
        res2 = replay(tracks, feats, config, layout)
        row = _row(model, f"learned ({len(layout.transitions)} transitions)", tracks, res2, gate,
                   config.same_camera_max_distance, centre)
        rows.append(row)
    return rows


def _row(model: Path, layout: str, tracks: list[Track], res: Replay, gate: float,
         same_camera: float | None, centre: bool = False) -> dict[str, Any]:
    s = {"gate": gate, "same_camera_gate": same_camera, "camera_centre": centre, **score(tracks, res.decisions)}
    ms = np.asarray(res.decide_ms)
    s.update({"model": model.name, "layout": layout, "rounds": res.rounds,
              "max_live_identities": max(res.live or [0]),
              "ms_per_decision_mean": round(float(ms.mean()), 3),
              "ms_per_decision_p95": round(float(np.percentile(ms, 95)), 3), "replay_s": round(res.wall_s, 1)})
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="DukeMTMC-reID folder (query/, bounding_box_*/)")
    ap.add_argument("--model", action="append", required=True,
                    help="re-id model: default, a packaged model's name, or a file (repeatable)")
    ap.add_argument("--cache", type=Path, default=Path("/work/scratch/a15"), help="embedding cache folder")
    ap.add_argument("--gate", type=float, nargs="+",
                    help="association gate(s) (default: the one `reid-edge run` uses with the model: its card's "
                         "match_gate, else 1.0)")
    ap.add_argument("--same-camera-gate", type=_gate_or_none, nargs="+",
                    help="gate(s) for re-links within one camera, or 'none' (default: the one `reid-edge run` uses: "
                         "its card's same_camera_gate, else none)")
    ap.add_argument("--split-gap", type=float, default=10.0, help="seconds without a crop that split a tracklet")
    ap.add_argument("--learn-layout", action="store_true", help="also replay with a layout learned from pass 1")
    ap.add_argument("--layout-out", type=Path, help="write the learned layout YAML here")
    ap.add_argument("--confident", type=float, default=TopologyConfig().confident_distance,
                    help="topology: matches at most this far are evidence")
    ap.add_argument("--min-moves", type=int, default=TopologyConfig().min_moves,
                    help="topology: moves a camera pair needs to be listed")
    ap.add_argument("--unseen-pairs", choices=("forbid", "allow"), default=TopologyConfig().unseen_pairs)
    ap.add_argument("--camera-centre", action="store_true",
                    help="also replay with per-camera centred embeddings (means over bounding_box_train/)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if not (a.data / "query").is_dir():
        raise SystemExit(f"{a.data} is not a DukeMTMC-reID folder (no query/)")
    rows = []
    topo = TopologyConfig(confident_distance=a.confident, min_moves=a.min_moves, unseen_pairs=a.unseen_pairs)
    for name in a.model:
        m = resolve_model(name)
        card_gate, card_same_camera = model_gates(m)
        names, plain = embed_all(a.data, m, a.cache)  # once per model: every gate replays the same crops
        tracks = build_tracklets(names, a.split_gap)
        variants = {False: plain}
        if a.camera_centre:
            train = {p.name for p in (a.data / "bounding_box_train").glob("*.jpg")}
            variants[True] = centre_by_camera(names, plain, train)
        for gate in a.gate or [card_gate]:
            for same_camera in a.same_camera_gate or [card_same_camera]:
                cfg = AssociationConfig(max_distance=gate, same_camera_max_distance=same_camera)
                for centre, feats in variants.items():
                    rows += run_model(m, tracks, feats, cfg, a.learn_layout, topo, a.layout_out, centre)
    hdr = ("model", "gate", "same_camera_gate", "camera_centre", "layout", "idf1", "assa", "true_identities",
           "predicted_identities", "tracklets", "ms_per_decision_mean", "ms_per_decision_p95", "max_live_identities")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) and k in ("idf1", "assa") else str(r[k])
                                for k in hdr) + " |")
    if a.json:
        atomic_write_text(a.json, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
