"""Issue 6, "adapting helps": a model trained at site A, deployed at a new site B, then adapted to B.

1. **Site A** (synthetic domain 0, outdoor campus): labelled-layout ``synth crops``; the selective
   contrastive method trains on them without labels (ImageNet MobileNetV2 start) -> the site-A model.
2. **Site B** (domain 1, indoor mall under warm light): unlabeled training footage, separate test
   footage with ground truth and det files, and a small labelled crop set (evaluation only).
3. **Un-adapted**: export the site-A model (ONNX + INT8, calibrated on its own held-aside site-A
   crops, as it would ship), run the two-camera pipeline on the site-B test footage with the site's
   det files (``--detections``) -> per-camera MOTA/IDF1 and cross-camera IDF1; re-id mAP on the
   labelled site-B crops (FP32 and INT8, from the export's INT8 report).
4. **Adapted**: ``reid-edge harvest`` on the site-B training footage (unlabeled crops + tracklets) ->
   ``reid-edge train --format unlabeled`` fine-tuning from the site-A checkpoint's backbone
   (``--pretrained site_a/last.pt`` loads the ``backbone.*`` part of a full checkpoint; the heads
   start fresh) -> export INT8 (calibrated on held-aside harvested crops) -> the same pipeline and
   evaluation. Done twice: without and with ``--tracklet-positives`` (beyond the paper).

Every stage is the CLI command a user would type, run in-process::

    python -m benchmarks.adaptation                          # default size (~10-15 min on 2 busy cores)
    python -m benchmarks.adaptation --json adaptation.json --work /tmp/adapt
    python -m benchmarks.adaptation --init imagenet          # adapt from ImageNet instead of the site-A model

Prints one table with the un-adapted and adapted models side by side, and the cross-camera IDF1 of
every model over a sweep of match gates (``--max-distance``, the same for every model), because the
pipeline's default gate suits some models' distance scale better than others'. Re-id mAP is measured
twice: on crops cut from the site-B test footage at its ground-truth boxes (the deployment's own
people; cross-camera matches only) and on separately rendered labelled site-B crops.

``lambda_c`` (same-camera selection penalty) is 0.5 for every training run here, not the paper's
0.05: with the paper's value, adaptation on a two-camera harvest did not help (cross-camera IDF1
60.8 -> 61.0, test-footage mAP 55.1 -> 42.6, with tracklet positives 20.5; one run, 14 people / 60 s
of training footage), because the nearest neighbours of a harvested crop are its own tracklet's
crops, all from one camera. ``tests/test_adaptation.py`` runs the same chain at a tiny size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from reid_edge.artifacts import INT8_CPU_ONNX, INT8_REPORT, LAST_CHECKPOINT
from reid_edge.errors import ConfigError

SITE_A, SITE_B = 0, 1
CAMS = ("cam1", "cam2")


@dataclass(frozen=True)
class AdaptationConfig:
    """Sizes of the experiment; the defaults are the benchmark's.

    Attributes:
        init: ``site_a`` (fine-tune from the site-A checkpoint's backbone) or ``imagenet``
            (train the site-B model from the same ImageNet start as the site-A one).
        variants: adapted models to build: ``plain`` and/or ``tracklets`` (``--tracklet-positives``).
        gate_sweep: extra pipeline runs with these cross-camera match gates (``--max-distance``),
            the same for every model: the default gate may suit one model's distance scale only.
        lambda_c: same-camera penalty of the selection, for every training run here. The paper's
            0.05 (Market-1501: 6 cameras, many cross-camera neighbours) leaves the adapted model
            picking same-tracklet, same-camera positives on two-camera harvests; 0.5 makes the
            selection look across cameras (see the module docstring).
        recalibrate: also deploy the un-adapted model with INT8 calibrated on the harvested site-B
            crops (no training), which separates re-calibration from adaptation.
    """

    seed: int = 0
    a_ids: int = 60
    a_cameras: int = 4
    a_epochs: int = 8
    b_epochs: int = 8
    warmup_epochs: int = 2
    batch_size: int = 16
    lr: float = 0.01
    height: int = 128
    width: int = 64
    embed_dim: int = 512
    num_stripes: int = 4
    k: int = 4
    m: int = 120
    lambda_c: float = 0.5
    train_people: int = 20
    train_seconds: float = 90.0
    test_people: int = 12
    test_seconds: float = 60.0
    eval_ids: int = 24
    harvest_every: int = 3
    max_per_track: int = 25
    calib_size: int = 32
    init: str = "site_a"
    variants: tuple[str, ...] = ("plain", "tracklets")
    recalibrate: bool = True
    gate_sweep: tuple[float, ...] = (1.0, 1.1, 1.2, 1.3)


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _metric(metrics: dict[str, Any], name: str) -> float:
    """A motmetrics figure from an ``eval-mtmc`` JSON (lower-case keys; upper-case accepted too)."""
    value = metrics.get(name, metrics.get(name.upper()))
    if value is None:
        raise KeyError(f"eval-mtmc output has no {name!r} (keys: {sorted(metrics)})")
    return float(value)


def make_sites(cfg: AdaptationConfig, work: Path) -> dict[str, Path]:
    """Site-A crops, site-B footage (train; test with ground truth), labelled site-B crops (rendered
    apart, and cut from the test footage at its ground-truth boxes)."""
    from reid_edge.synth.crops import generate_crops
    from reid_edge.synth.scene import generate_scene

    paths = {"a_crops": work / "site_a" / "crops", "b_footage": work / "site_b" / "footage",
             "b_test": work / "site_b" / "test", "b_eval": work / "site_b" / "eval_crops"}
    generate_crops(paths["a_crops"], ids=cfg.a_ids, cameras=cfg.a_cameras, seed=cfg.seed + 1, height=cfg.height,
                   width=cfg.width, domain=SITE_A, overwrite=True)
    generate_scene(paths["b_footage"], cameras=len(CAMS), people=cfg.train_people, seconds=cfg.train_seconds,
                   seed=cfg.seed + 11, domain=SITE_B, overwrite=True)
    generate_scene(paths["b_test"], cameras=len(CAMS), people=cfg.test_people, seconds=cfg.test_seconds,
                   seed=cfg.seed + 23, domain=SITE_B, overwrite=True)
    generate_crops(paths["b_eval"], ids=cfg.eval_ids, cameras=len(CAMS), seed=cfg.seed + 37, height=cfg.height,
                   width=cfg.width, domain=SITE_B, overwrite=True)
    scene_crops(paths["b_test"], work / "site_b" / "test_crops")
    paths["b_test_crops"] = work / "site_b" / "test_crops"
    return paths


def scene_crops(scene: Path, out: Path, *, every: int = 5, per_track: int = 12, min_height: int = 48) -> Path:
    """Labelled crops of a ``synth scene``'s people, cut at its ground-truth boxes, in the Market layout.

    Per (person, camera): every ``every``-th fully visible box (inside the frame, not too thin or
    small), at most ``per_track``; the first goes to ``query/`` (and a copy to the unused
    ``bounding_box_train/``), the rest to ``bounding_box_test/``.
    The Market protocol then scores cross-camera matching only (same-camera gallery entries are
    ignored), on the very people and footage the pipeline sees: re-id mAP of the deployment itself.
    """
    import cv2

    from reid_edge.io import prepare_out_dir

    root = prepare_out_dir(out, True)
    for split in ("query", "bounding_box_test", "bounding_box_train"):
        (root / split).mkdir(exist_ok=True)
    for cam_index, cam in enumerate(CAMS, start=1):
        boxes: dict[int, list[tuple[int, int, int, int, int]]] = {}
        for line in (scene / f"{cam}.gt.txt").read_text().splitlines():
            f = line.split(",")
            frame, pid, x, y, w, h = int(f[0]), int(f[1]), *(int(round(float(v))) for v in f[2:6])
            boxes.setdefault(frame, []).append((pid, x, y, w, h))
        cap = cv2.VideoCapture(str(scene / f"{cam}.mp4"))
        taken: dict[int, int] = {}
        seen: dict[int, int] = {}
        frame_no = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frame_no += 1
            for pid, x, y, w, h in boxes.get(frame_no, []):
                inside = x >= 0 and y >= 0 and x + w <= img.shape[1] and y + h <= img.shape[0]
                if not inside or h < min_height or w < 0.25 * h:
                    continue
                seen[pid] = seen.get(pid, 0) + 1
                if (seen[pid] - 1) % every or taken.get(pid, 0) >= per_track:
                    continue
                split = "query" if pid not in taken else "bounding_box_test"
                taken[pid] = taken.get(pid, 0) + 1
                name = f"{pid:04d}_c{cam_index}s1_{frame_no:06d}_00.jpg"
                cv2.imwrite(str(root / split / name), img[y:y + h, x:x + w])
                if split == "query":  # the Market reader wants a non-empty train split; eval never reads it
                    cv2.imwrite(str(root / "bounding_box_train" / name), img[y:y + h, x:x + w])
        cap.release()
    return root


def reid_map(model: Path, data: Path, out_json: Path) -> dict[str, float]:
    """``reid-edge eval`` of a deployed artifact on a Market-layout folder: mAP and rank-1."""
    from reid_edge.io import atomic_write_json
    from reid_edge.train.evaluate import evaluate_artifact

    res = evaluate_artifact(model, data, "market1501", device="cpu").result.to_dict()
    atomic_write_json(out_json, res)
    return {"mAP": float(res["mAP"]), "rank1": float(res["rank1"])}


def train_model(cfg: AdaptationConfig, data: Path, fmt: str, out: Path, *, epochs: int, pretrained: str | None,
                tracklet_positives: bool = False, eval_every: int = 0) -> Path:
    """``reid-edge train`` into ``out``; returns its ``last.pt``."""
    from reid_edge.train.config import MethodConfig, TrainConfig
    from reid_edge.train.trainer import train

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    train(TrainConfig(
        data=str(data), format=fmt, out=str(out), backbone="mobilenetv2", pretrained=pretrained, epochs=epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, height=cfg.height, width=cfg.width, embed_dim=cfg.embed_dim,
        num_stripes=cfg.num_stripes, workers=0, eval_every=eval_every, seed=cfg.seed, calib_holdout=cfg.calib_size,
        device="cpu", tracklet_positives=tracklet_positives,
        method=MethodConfig(k=cfg.k, m=cfg.m, warmup_epochs=cfg.warmup_epochs, lambda_c=cfg.lambda_c),
    ))
    return out / LAST_CHECKPOINT


def run_pipeline(cfg: AdaptationConfig, model: Path, test: Path, out: Path, gate: float | None) -> dict[str, Any]:
    """The two-camera pipeline on ``test`` (its det files) and ``eval-mtmc``; ``gate``: ``--max-distance``."""
    from reid_edge.io import atomic_write_json
    from reid_edge.pipeline.mtmc_eval import evaluate_mtmc
    from reid_edge.pipeline.runner import PipelineConfig, run_cameras

    run_cameras([str(test / f"{c}.mp4") for c in CAMS], out, model, overwrite=True, device="cpu",
                camera_names=list(CAMS), detections_dir=test, config=PipelineConfig().with_overrides(max_distance=gate))
    atomic_write_json(out / "mtmc_eval.json", evaluate_mtmc(out, test))
    mt = _read_json(out / "mtmc_eval.json")
    pipe = _read_json(out / "summary.json")
    return {
        "cross_camera_IDF1": _metric(mt["cross_camera"], "idf1"),
        "cameras": {c: {"MOTA": _metric(m, "mota"), "IDF1": _metric(m, "idf1")} for c, m in mt["cameras"].items()},
        "identities": pipe.get("num_identities"),
        "cross_camera_identities": pipe.get("cross_camera_identities"),
        "max_distance": pipe.get("config", {}).get("association", {}).get("max_distance"),
    }


def deploy_and_measure(cfg: AdaptationConfig, checkpoint: Path, sites: dict[str, Path], out: Path,
                       calib: Path | None = None) -> dict[str, Any]:
    """Export INT8, run the two-camera pipeline on the site-B test footage, evaluate; returns the figures.

    ``calib``: calibration crops folder (default: the checkpoint's own held-aside training crops). The
    INT8 accuracy gate is disabled (``--min-cosine 0``): a badly calibrated model is part of what is
    measured; its FP32-vs-INT8 cosine is reported instead.
    """
    from reid_edge.deploy.exporter import ExportOptions, run_export

    export_dir, mtmc_dir = out / "export", out / "mtmc"
    files = run_export(ExportOptions(checkpoint=checkpoint, out=export_dir, format="onnx", int8=True, calib=calib,
                                     calib_size=cfg.calib_size, eval_data=sites["b_eval"], min_cosine=0.0,
                                     overwrite=True)).files
    report = _read_json(files[INT8_REPORT])
    int8_cpu = files[INT8_CPU_ONNX]
    default = run_pipeline(cfg, int8_cpu, sites["b_test"], mtmc_dir, None)
    sweep = {str(g): run_pipeline(cfg, int8_cpu, sites["b_test"], out / f"mtmc_gate_{g}", g) for g in cfg.gate_sweep}
    retrieval = report.get("retrieval") or {}
    # the encoding the pipeline ran (model.int8.cpu.onnx = "int8-qdq-cpu"), else any INT8 one
    int8_names = sorted((n for n, v in retrieval.items() if n != "fp32" and isinstance(v, dict)),
                        key=lambda n: "cpu" not in n)
    int8 = retrieval[int8_names[0]] if int8_names else {}
    enc = report.get("encodings", {})
    cpu_enc = enc.get(int8_names[0], {}) if int8_names else {}
    scene = reid_map(int8_cpu, sites["b_test_crops"], out / "scene_reid.json")
    return {
        **default,
        "scene_mAP_int8": scene["mAP"],
        "scene_rank1_int8": scene["rank1"],
        "siteB_mAP_fp32": retrieval.get("fp32", {}).get("mAP"),
        "siteB_rank1_fp32": retrieval.get("fp32", {}).get("rank1"),
        "siteB_mAP_int8": int8.get("mAP"),
        "int8_cosine": cpu_enc.get("cosine", {}).get("global", {}).get("mean"),
        "calibration": str(calib) if calib is not None else "checkpoint's held-aside training crops",
        "siteB_retrieval": retrieval,
        "gate_sweep": sweep,
    }


def run_adaptation(cfg: AdaptationConfig, work: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole experiment in ``work``; returns ``{"models": {name: figures}, ...}``.

    Models: ``unadapted`` (site-A model), ``adapted`` (plain) and ``adapted+tracklets``, as listed
    in ``cfg.variants``.
    """
    for v in cfg.variants:
        if v not in ("plain", "tracklets"):
            raise ConfigError(f"unknown adaptation variant {v!r} (plain, tracklets)")
    if cfg.init not in ("site_a", "imagenet"):
        raise ConfigError(f"unknown adaptation init {cfg.init!r} (site_a, imagenet)")
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        log(f"\n=== adaptation stage: {name} ===")
        t0 = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t0, 1)
        log(f"=== {name}: {timings[name]:.1f} s ===")
        return value

    sites = stage("sites", lambda: make_sites(cfg, work))
    ckpt_a = stage("train site A", lambda: train_model(cfg, sites["a_crops"], "market1501", work / "train_site_a",
                                                       epochs=cfg.a_epochs, pretrained="imagenet",
                                                       eval_every=cfg.a_epochs))
    crops = work / "site_b" / "harvest"

    def harvest() -> dict[str, Any]:
        if crops.exists():
            shutil.rmtree(crops)
        from reid_edge.io import prepare_out_dir
        from reid_edge.pipeline.harvest import HarvestConfig
        from reid_edge.pipeline.harvest import harvest as harvest_crops

        footage = sites["b_footage"]
        # the synthetic site's cartoon people are not COCO people: the motion detector, as the demo
        harvest_crops([str(footage / f"{c}.mp4") for c in CAMS], prepare_out_dir(crops, overwrite=False),
                      detector="motion", camera_names=list(CAMS), config=HarvestConfig(every=cfg.harvest_every,
                                                                    max_per_track=cfg.max_per_track))
        return _read_json(crops / "harvest_summary.json")

    harvest_summary = stage("harvest site B", harvest)
    models: dict[str, Any] = {}
    models["unadapted"] = stage("deploy un-adapted", lambda: deploy_and_measure(cfg, ckpt_a, sites, work / "unadapted"))
    if cfg.recalibrate:
        models["unadapted, site-B calib"] = stage("deploy un-adapted, site-B calibration", lambda: deploy_and_measure(
            cfg, ckpt_a, sites, work / "unadapted_calib_b", calib=crops))
    init = str(ckpt_a) if cfg.init == "site_a" else "imagenet"
    for variant in cfg.variants:
        name = "adapted" if variant == "plain" else "adapted+tracklets"
        folder = name.replace("+", "_")
        ckpt = stage(f"train {name}", partial(train_model, cfg, crops, "unlabeled", work / f"train_{folder}",
                                              epochs=cfg.b_epochs, pretrained=init,
                                              tracklet_positives=variant == "tracklets"))
        models[name] = stage(f"deploy {name}", partial(deploy_and_measure, cfg, ckpt, sites, work / folder))
    site_a_log = (work / "train_site_a" / "log.csv").read_text().strip().splitlines()
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "init": ("fine-tuned from the site-A checkpoint's backbone (--pretrained site_a/last.pt; heads re-initialized)"
                 if cfg.init == "site_a" else "trained from ImageNet MobileNetV2 (--pretrained imagenet)"),
        "harvest": {k: harvest_summary.get(k) for k in ("total_crops", "total_tracklets")},
        "site_a_train_log_last": site_a_log[-1] if len(site_a_log) > 1 else None,
        "models": models,
        "timings_s": timings,
        "wall_seconds": round(time.perf_counter() - t_all, 1),
    }


def _f(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}"


def format_table(results: dict[str, Any]) -> str:
    """The models side by side (percent)."""
    models = results["models"]
    cams = sorted({c for m in models.values() for c in m["cameras"]})
    head = ["model", "cross-camera IDF1"] + [f"{c} MOTA / IDF1" for c in cams] + \
        ["test-footage mAP / rank-1 INT8", "site-B crops mAP FP32 / INT8", "INT8 cosine",
         "identities (cross-cam)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, m in models.items():
        row = [name, _f(m["cross_camera_IDF1"])]
        row += [f"{_f(m['cameras'].get(c, {}).get('MOTA'))} / {_f(m['cameras'].get(c, {}).get('IDF1'))}" for c in cams]
        row += [f"{_f(m['scene_mAP_int8'])} / {_f(m['scene_rank1_int8'])}",
                f"{_f(m['siteB_mAP_fp32'])} / {_f(m['siteB_mAP_int8'])}",
                "-" if m.get("int8_cosine") is None else f"{m['int8_cosine']:.3f}",
                f"{m['identities']} ({m['cross_camera_identities']})"]
        lines.append("| " + " | ".join(row) + " |")
    gates = sorted({g for m in models.values() for g in m.get("gate_sweep", {})}, key=float)
    if gates:
        default = next(iter(models.values())).get("max_distance")
        lines += ["", "Cross-camera IDF1 by match gate (--max-distance; the same gate for every model):", "",
                  "| model | " + " | ".join([f"{default} (default)"] + gates) + " | mean | best |",
                  "|" + " --- |" * (len(gates) + 4)]
        for name, m in models.items():
            vals = [m["cross_camera_IDF1"]] + [m["gate_sweep"][g]["cross_camera_IDF1"] for g in gates]
            lines.append("| " + " | ".join([name] + [_f(v) for v in vals] + [_f(sum(vals) / len(vals)), _f(max(vals))])
                         + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    d = AdaptationConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--a-ids", type=int, default=d.a_ids, help="site-A identities (half used for training)")
    ap.add_argument("--a-epochs", type=int, default=d.a_epochs)
    ap.add_argument("--b-epochs", type=int, default=d.b_epochs)
    ap.add_argument("--train-people", type=int, default=d.train_people)
    ap.add_argument("--train-seconds", type=float, default=d.train_seconds)
    ap.add_argument("--test-people", type=int, default=d.test_people)
    ap.add_argument("--test-seconds", type=float, default=d.test_seconds)
    ap.add_argument("--lambda-c", type=float, default=d.lambda_c,
                    help="same-camera selection penalty for every training run (paper: 0.05)")
    ap.add_argument("--init", choices=("site_a", "imagenet"), default=d.init,
                    help="start of the adapted model: the site-A checkpoint's backbone or ImageNet")
    ap.add_argument("--no-tracklets", action="store_true", help="skip the --tracklet-positives variant")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--work", type=Path, default=None, help="keep everything here (default: a temp folder)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    cfg = AdaptationConfig(seed=args.seed, a_ids=args.a_ids, a_epochs=args.a_epochs, b_epochs=args.b_epochs,
                           train_people=args.train_people, train_seconds=args.train_seconds,
                           test_people=args.test_people, test_seconds=args.test_seconds, init=args.init,
                           lambda_c=args.lambda_c,
                           variants=("plain",) if args.no_tracklets else ("plain", "tracklets"))
    if args.work is not None:
        results = run_adaptation(cfg, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="reid-edge-adaptation-") as tmp:
            results = run_adaptation(cfg, Path(tmp))
    print(f"\nEvery training: MobileNetV2 {cfg.height}x{cfg.width}, batch {cfg.batch_size}, lr {cfg.lr}, "
          f"K={cfg.k}, M={cfg.m}, warm-up {cfg.warmup_epochs}, lambda_c={cfg.lambda_c}; site A {cfg.a_epochs} epochs "
          f"on {cfg.a_ids} ids x {cfg.a_cameras} cameras, site B {cfg.b_epochs} epochs.")
    print(f"Site A (domain {SITE_A}) model deployed at site B (domain {SITE_B}); adapted model {results['init']}.")
    print(f"Harvested {results['harvest']['total_crops']} unlabeled site-B crops from "
          f"{results['harvest']['total_tracklets']} tracklets. Pipeline on the site-B test footage with its det files,"
          " INT8 ONNX Runtime model; re-id mAP on labelled site-B crops (evaluation only):\n")
    print(format_table(results))
    print("\nstage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in results["timings_s"].items()))
    print(f"wall time {results['wall_seconds']:.0f} s")
    if args.json is not None:
        from reid_edge.io import atomic_write_json

        atomic_write_json(args.json, results)
        print(f"numbers: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
