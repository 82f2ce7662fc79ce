"""Benchmark the multi-camera pipeline.

Synthetic scene (tracking + cross-camera re-id quality, detection taken from the scene's det files)::

    python -m benchmarks.pipeline --model runs/train/export/model.int8.cpu.onnx --scene runs/scene
    python -m benchmarks.pipeline --model runs/train/last.pt            # generates a 2-camera, 8-person scene

Real clips (throughput with the embedded default detector; the two clips act as two cameras)::

    python -m benchmarks.pipeline --model runs/train/export/model.int8.cpu.onnx --real

Prints per-camera MOTA/IDF1, cross-camera IDF1 (scene mode), frames/s per camera and the time
per stage; ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = ("pets2009_s2l1_view1.avi", "one-by-one-person-detection.mp4")


def ensure_scene(scene: Path | None, people: int, seconds: int, seed: int, work: Path) -> Path:
    """The given scene folder, or a freshly generated ``synth scene`` (2 cameras)."""
    if scene is not None:
        return scene
    from reid_edge.synth.scene import generate_scene

    out = work / "scene"
    generate_scene(out, cameras=2, people=people, seconds=seconds, seed=seed)
    return out


def _print_run(summary: dict[str, Any]) -> None:
    for name, c in summary["cameras"].items():
        print(f"  {name:32s} {c['frames']:5d} frames  {c['fps']:7.1f} frames/s")
    print("  ms/frame per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms_per_frame"].items()))
    print(f"  identities {summary['num_identities']} (cross-camera {summary['cross_camera_identities']}), "
          f"crops embedded {summary['embeddings']}, wall {summary['wall_seconds']:.1f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="re-id artifact (default: the run's default search)")
    ap.add_argument("--scene", type=Path, default=None, help="a `synth scene` folder (default: generate one)")
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", action="store_true", help="the two real clips with the default detector")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--detector", default="yolox")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--max-distance", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None, help="keep the pipeline outputs here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from reid_edge.backends import load_backend
    from reid_edge.pipeline.associate import AssociationConfig
    from reid_edge.pipeline.mtmc_eval import evaluate_mtmc
    from reid_edge.pipeline.runner import PipelineConfig, find_default_model, run_pipeline

    model = args.model or find_default_model(REPO)
    backend = load_backend(model, device=args.device)
    cfg = PipelineConfig()
    if args.max_distance is not None:
        cfg = PipelineConfig(association=AssociationConfig(max_distance=args.max_distance))
    print(f"model {model} ({backend.name}, {backend.card.backbone}, {backend.card.encoding})")
    result: dict[str, Any] = {"model": str(model)}
    with tempfile.TemporaryDirectory(prefix="reid-edge-bench.") as tmp:
        work = Path(tmp)
        out = args.out or work / "out"
        out.mkdir(parents=True, exist_ok=True)
        if args.real:
            clips = [args.data / "videos" / c for c in REAL_CLIPS]
            missing = [str(c) for c in clips if not c.is_file()]
            if missing:
                raise SystemExit(f"real clips missing: {', '.join(missing)}")
            summary = run_pipeline([str(c) for c in clips], out, backend, detector=args.detector, config=cfg,
                                   max_frames=args.max_frames, device=args.device)
            print(f"real clips, detector {args.detector}:")
            _print_run(summary)
            result["real"] = summary
        else:
            scene = ensure_scene(args.scene, args.people, args.seconds, args.seed, work)
            cams = sorted(scene.glob("cam*.mp4"))
            summary = run_pipeline([str(c) for c in cams], out, backend, detections_dir=scene, config=cfg,
                                   max_frames=args.max_frames, device=args.device)
            metrics = evaluate_mtmc(out, scene)
            print(f"scene {scene} ({len(cams)} cameras, detections from the scene's det files):")
            for cam, m in metrics["cameras"].items():
                print(f"  {cam:8s} MOTA {m['mota']:.3f}  IDF1 {m['idf1']:.3f}  ID switches {int(m['num_switches'])}")
            print(f"  cross-camera IDF1 {metrics['cross_camera']['idf1']:.3f}  "
                  f"(IDP {metrics['cross_camera']['idp']:.3f}, IDR {metrics['cross_camera']['idr']:.3f})")
            _print_run(summary)
            result.update(scene=str(scene), metrics=metrics, run=summary)
    backend.close()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from reid_edge.io import atomic_write_text
        atomic_write_text(args.json, json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
