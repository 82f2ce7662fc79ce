"""Association decision time and memory as the number of live identities grows (one run).

The Associator is filled with identities (random unit appearances in ``--dim`` dimensions,
4 cameras, one tracklet each, timestamps spread over a day), then at each checkpoint
(100 / 1,000 / 10,000 identities by default) ``--decisions`` single-tracklet rounds are timed:
half are people who come back (a noisy copy of a known identity's appearance, in another
camera, later), half are new people; ``correct`` counts returning people given their own id
and new people given a new one. Decisions are real: the Hungarian gate, the feasibility
rules (with a ring layout of 4 cameras when ``--layout``) and the identity updates all run.

For reference the pure :func:`~reid_edge.pipeline.associate.match_tracklets` (dense cost
matrix over every identity, feasibility in Python for every pair) is timed at each size on a
few rounds (``--dense-rounds``), and its decisions are compared with the Associator's.

Memory: the Python heap held by an Associator of that size (tracemalloc, measured in a separate
fill so that tracing does not slow the timed decisions) and the process's peak RSS.

Usage::

    python -m benchmarks.association_scale [--sizes 100 1000 10000] [--json out.json]
"""

from __future__ import annotations

import os

# One BLAS thread: a decision is a matrix-vector product, memory-bound; more threads only add
# contention (measured here: 23 ms with OpenBLAS's 2 threads on a busy box vs 2.3 ms with 1).
# Set before numpy is imported; an explicit OPENBLAS_NUM_THREADS in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from reid_edge.distance import unit_rows  # noqa: E402
from reid_edge.pipeline.associate import (  # noqa: E402
    AssociationConfig,
    Associator,
    IdentityView,
    Interval,
    Query,
    TrackletEvent,
    match_tracklets,
)
from reid_edge.pipeline.layout import layout_from_dict  # noqa: E402

CAMERAS = ("c1", "c2", "c3", "c4")


def _views(assoc: Associator) -> list[IdentityView]:
    """Every identity as the pure matcher sees it (for the dense reference)."""
    out = []
    for col, ident in enumerate(assoc._ids):  # noqa: SLF001 - a benchmark looks inside on purpose
        g = assoc._rows.g[col].copy()  # noqa: SLF001
        out.append(IdentityView(ident.gid, g, None, [m.interval for m in ident.members], ident.weight))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--decisions", type=int, default=200)
    ap.add_argument("--dense-rounds", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.5, help="appearance noise of a returning person")
    ap.add_argument("--layout", action="store_true", help="a ring layout c1->c2->c3->c4->c1 (1..600 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=str)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    layout = None
    if a.layout:
        ring = [{"from": CAMERAS[i], "to": CAMERAS[(i + 1) % 4], "min_s": 1, "max_s": 600} for i in range(4)]
        layout = layout_from_dict({"transitions": ring})
    gate = 1.0
    cfg = AssociationConfig(max_distance=gate)
    # every appearance drawn up front, so that the heap measured is the Associator's alone
    total = max(a.sizes) + a.decisions * len(a.sizes)
    pool = unit_rows(rng.normal(size=(total, a.dim)))
    noise = rng.normal(size=(a.decisions * len(a.sizes), a.dim)) / np.sqrt(a.dim)
    fresh = iter(range(total))
    match_tracklets([Query(Interval("c1", 0, 1), pool[0])], [IdentityView(1, pool[1], None, [])], 2, 1.0)  # warm
    assoc = Associator(cfg, 1.0, a.dim, layout)
    looks: list[int] = []
    gid_of: dict[int, int] = {}  # appearance -> the identity it founded
    k_noise = 0
    clock = 0.0
    n_ev = 0

    def event(g: np.ndarray, cam: str) -> TrackletEvent:
        nonlocal clock, n_ev
        clock += 1.0
        n_ev += 1
        return TrackletEvent(f"e{n_ev}", cam, clock, clock + 5.0, g * 3.0, None, 3.0, True)

    rows: list[dict[str, Any]] = []
    for size in sorted(a.sizes):
        t_fill = time.perf_counter()
        while len(assoc) < size:  # fill with new people, one round each
            looks.append(next(fresh))
            g = pool[looks[-1]]
            [d0] = assoc.decide([event(g, CAMERAS[len(looks) % 4])])
            gid_of[looks[-1]] = d0.global_id
        fill_s = time.perf_counter() - t_fill
        times, dense_times, agree, matched, correct = [], [], 0, 0, 0
        for i in range(a.decisions):
            who = -1
            if i % 2 == 0:
                who = looks[int(rng.integers(len(looks)))]
                g = unit_rows(pool[who] + a.noise * noise[k_noise])
                k_noise += 1
            else:
                looks.append(next(fresh))
                g = pool[looks[-1]]
            ev = event(g, CAMERAS[int(rng.integers(4))])
            if i < a.dense_rounds:
                views = _views(assoc)
                q = Query(Interval(ev.camera, ev.start_s, ev.end_s), unit_rows(g))
                t0 = time.perf_counter()
                want, _, _ = match_tracklets([q], views, assoc.next_gid, gate, 1.0, layout)
                dense_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            [d] = assoc.decide([ev])
            times.append(time.perf_counter() - t0)
            matched += d.distance is not None
            if who >= 0:
                correct += int(d.global_id == gid_of[who])
            else:
                gid_of[looks[-1]] = d.global_id
                correct += int(d.distance is None)
            if i < a.dense_rounds:
                agree += int(want[0] == d.global_id)
        ms = 1000 * np.asarray(times)
        row = {"identities": size, "ms_per_decision_mean": round(float(ms.mean()), 3),
               "ms_per_decision_p50": round(float(np.median(ms)), 3),
               "ms_per_decision_p95": round(float(np.percentile(ms, 95)), 3),
               "ms_per_decision_max": round(float(ms.max()), 3),
               "dense_reference_ms": round(1000 * float(np.mean(dense_times)), 1) if dense_times else None,
               "dense_agrees": f"{agree}/{min(a.dense_rounds, a.decisions)}",
               "matched": f"{matched}/{a.decisions}", "correct": f"{correct}/{a.decisions}",
               "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "fill_s": round(fill_s, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    # memory in a separate fill (tracemalloc slows every allocation: it stays off while timing)
    tracemalloc.start()
    base_heap = tracemalloc.get_traced_memory()[0]
    fresh_assoc = Associator(cfg, 1.0, a.dim, layout)
    for row in rows:
        while len(fresh_assoc) < row["identities"]:
            fresh_assoc.decide([event(pool[len(fresh_assoc)], CAMERAS[len(fresh_assoc) % 4])])
        row["heap_mb"] = round((tracemalloc.get_traced_memory()[0] - base_heap) / 2**20, 1)
    tracemalloc.stop()
    hdr = list(rows[0])
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in hdr) + " |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
