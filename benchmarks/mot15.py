"""Detection and tracking on real footage with ground truth: MOT15 PETS09-S2L1 and TUD-Stadtmitte.

For each sequence and detector, runs the whole ``reid-edge run`` pipeline (one camera, the
packaged re-ID model unless ``--model``) and scores it with ``eval-mtmc``'s metrics (HOTA,
MOTA, IDF1, ID switches) against the MOTChallenge ground truth, plus the frames/s of the run::

    python -m benchmarks.mot15                                  # all four detectors, both sequences
    python -m benchmarks.mot15 --detectors yolox yolox-int8 --json runs/mot15.json
    python -m benchmarks.mot15 --detectors yolox yolox-int8 --config pipeline.yml   # e.g. other tracker settings
    python -m benchmarks.mot15 --detectors yolox yolox@480 yolox@640 --sequences PETS09-S2L1   # input sizes
    python -m benchmarks.mot15 --detectors yolox yolox-int8 --det-cache runs/mot15-dets --config t.yml   # sweeps

Detectors: ``motion``, ``hog``, ``yolox`` (the packaged YOLOX-Nano, FP32) and ``yolox-int8``
(its ``int8-qdq-cpu`` encoding from ``reid-edge export-detector``, calibrated without labels on
the first half of the same sequence's video, as a site would calibrate on its own footage);
``@SIZE`` after ``yolox`` or ``yolox-int8`` sets the network input's long side (416 by default).
``--gt-same-person 18=14 8=14 ...`` scores a second time against a copy of the ground truth where
the listed ids are one person (MOT15 gives a person a new id each time they come back into view;
which ids are one person is the caller's reading of the boxes, not part of the ground truth).
``--gt-all-rows`` also scores against a copy where the rows the ground truth marks "not considered"
(7th column 0) count as people: by default they are dropped, as TrackEval does for MOT15, and a box
on them is a false positive. On PETS09-S2L1 these are 174 rows of ids 11, 12 and 16 in frames
147-244, people whose other rows are considered; the baseline table of the issue that asked for this
benchmark reproduces only when they are scored as people (README).
With both flags the runs are scored four ways.
``--mot-convention`` runs the pipeline the way MOTChallenge's ground truth counts identities, a
person who leaves the view and comes back being a new person: lost tracks are kept only
``tracker.track_buffer`` frames (no appearance re-finding after that) and the association makes no
re-links within a camera (on top of ``--config``). The default pipeline re-identifies a returning
person, which MOT15's ids score as an identity error; ``--gt-same-person`` scores that instead.
PETS09-S2L1's ground truth is at 768x576 and its video at 480x360: boxes are scaled by 480/768.
``--det-cache DIR`` keeps each detector's boxes as MOT det files (``DIR/<detector>/<sequence>.txt``,
written by a first pass of the detector over the video) and runs the pipeline on them, as ``reid-edge
run --detections`` does: a tracker or association setting is then measured in seconds, on exactly the
boxes of the first run; frames/s then leaves out the detector. Remove the folder after changing the
detector or the video.
Needs ``../shared/data`` (``--data``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# name -> (video, gt, gt scale to the video's pixels)
SEQUENCES = {
    "PETS09-S2L1": ("videos/pets2009_s2l1_view1.avi", "mot15/PETS09-S2L1/gt/gt.txt", 480 / 768),
    "TUD-Stadtmitte": ("mot15/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "mot15/TUD-Stadtmitte/gt/gt.txt", 1.0),
}
DETECTORS = ("motion", "hog", "yolox", "yolox-int8")


def sequence_files(data: Path, seq: str) -> tuple[Path, Path, float]:
    """``seq``'s video, ground truth and gt scale under the shared ``data`` folder.

    Raises:
        SystemExit: either file is missing (a one-line message, exit code 2).
    """
    video_rel, gt_rel, scale = SEQUENCES[seq]
    video, gt = data / video_rel, data / gt_rel
    if not (video.is_file() and gt.is_file()):
        print(f"error: {seq}: {video} or {gt} is missing", file=sys.stderr)
        raise SystemExit(2)
    return video, gt, scale


def detector_choice(value: str) -> str:
    """argparse type of ``--detectors``: one of :data:`DETECTORS`, YOLOX ones optionally ``@SIZE``."""
    name, _, size = value.partition("@")
    if name not in DETECTORS or (size and (name not in ("yolox", "yolox-int8") or not size.isdigit())):
        raise argparse.ArgumentTypeError(f"'{value}' is not one of {', '.join(DETECTORS)} "
                                         "(yolox and yolox-int8 may end in @SIZE, e.g. yolox@640)")
    return value


def same_person(value: str) -> tuple[int, int]:
    """argparse type of ``--gt-same-person``: ``A=B`` (ground-truth id A is person B)."""
    a, sep, b = value.partition("=")
    if not (sep and a.isdigit() and b.isdigit()):
        raise argparse.ArgumentTypeError(f"'{value}' is not ID=ID (e.g. 18=14)")
    return int(a), int(b)


def write_scaled_gt(gt: Path, scale: float, out: Path, max_frames: int | None,
                    same: dict[int, int] | None = None, all_rows: bool = False) -> None:
    """A copy of a MOT gt file with boxes scaled to the video (and cut at ``max_frames``);
    ``same`` maps ids to the id of the person they are (``{18: 14}``: id 18 is written as 14);
    ``all_rows``: rows marked not considered (7th column 0) are written as considered."""
    from reid_edge.pipeline.motfile import read_mot_rows

    rows = read_mot_rows(gt)
    if max_frames is not None:
        rows = rows[rows[:, 0] <= max_frames]
    rows[:, 2:6] *= scale
    if same:
        rows[:, 1] = [same.get(int(i), int(i)) for i in rows[:, 1]]
    if all_rows:
        rows[:, 6] = 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{int(r[6])},-1,-1,-1\n"
                           for r in rows))


def int8_detector(video: Path, gt: Path, scale: float, work: Path) -> tuple[str, dict[str, Any]]:
    """``yolox:<int8-qdq-cpu file>`` calibrated on ``video``, and the export report."""
    from reid_edge.calibration.detector import DetectorExportConfig, export_detector

    res = export_detector(DetectorExportConfig(videos=(str(video),), out=work, gt=(str(gt),), gt_scale=(scale,)),
                          log=lambda msg: print(f"  {msg}", file=sys.stderr))
    return f"yolox:{res.files['int8-qdq-cpu']}", res.report


def detect_video(detector: Any, video: Path) -> tuple[dict[int, Any], float]:
    """A detector's boxes on every frame of ``video`` (frame number from 1 -> ``[N, 5]``) and its mean ms
    per frame."""
    from reid_edge.pipeline.sources import open_sources

    source = open_sources([str(video)], [video.stem])[0]
    out: dict[int, Any] = {}
    spent = 0.0
    try:
        while (frame := source.read()) is not None:
            t0 = time.perf_counter()
            out[frame.index] = detector.detect(frame.image, frame.index)
            spent += time.perf_counter() - t0
    finally:
        source.close()
    return out, 1000 * spent / max(len(out), 1)


def cached_detections(video: Path, spec: str, file: Path) -> None:
    """Write the detector ``spec``'s boxes on every frame of ``video`` to the det file ``file``, unless it
    exists (atomic: an interrupted pass leaves no file)."""
    if file.is_file():
        return
    from reid_edge.io import atomic_write_text
    from reid_edge.pipeline.detectors import make_detector
    from reid_edge.pipeline.motfile import det_line

    boxes, _ = detect_video(make_detector(spec, video.stem, device="cpu"), video)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, "".join(det_line(f, *map(float, b)) for f, rows in boxes.items() for b in rows))


def load_config(path: Path | None) -> Any:
    """The pipeline configuration from ``--config`` (``reid-edge run --config``'s YAML), or defaults.

    Raises:
        SystemExit: the file is missing or invalid (a one-line message, exit code 2).
    """
    from reid_edge.config import load_yaml
    from reid_edge.errors import ConfigError
    from reid_edge.pipeline.runner import PipelineConfig

    try:
        return load_yaml(PipelineConfig, path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# result key -> (--gt-same-person applied, --gt-all-rows applied, how the table's heading says it)
SCORINGS = {
    "metrics": (False, False, ""),
    "metrics_same_person": (True, False, "with ground-truth ids {same} as one person"),
    "metrics_all_rows": (False, True, "with the ground truth's rows marked not considered scored as people"),
    "metrics_all_rows_same_person": (True, True, "with the rows marked not considered scored as people and "
                                                 "ground-truth ids {same} as one person"),
}


def write_scorings(gt: Path, scale: float, folder: Path, seq: str, max_frames: int | None,
                   same: dict[int, int], all_rows: bool) -> dict[str, Path]:
    """The ground-truth folders a run is scored against (result key of :data:`SCORINGS` -> folder
    holding ``<seq>.gt.txt``): MOT15's own, and the readings ``same`` and ``all_rows`` ask for."""
    out: dict[str, Path] = {}
    for key, (by_person, every_row, _) in SCORINGS.items():
        if (by_person and not same) or (every_row and not all_rows):
            continue
        out[key] = folder / key.replace("metrics", "gt").replace("_", "-")
        write_scaled_gt(gt, scale, out[key] / f"{seq}.gt.txt", max_frames, same if by_person else None, every_row)
    return out


# a same-camera re-link needs this long a gap: never (finite, so summary.json stays plain JSON)
NO_SAME_CAMERA_LINKS_S = 1e9


def mot_convention(config: Any) -> Any:
    """``config`` run as MOTChallenge counts identities: a person who left the view is a new one (lost
    tracks kept ``track_buffer`` frames, no same-camera re-links by the association)."""
    import dataclasses

    return dataclasses.replace(
        config, tracker=dataclasses.replace(config.tracker, lost_buffer=config.tracker.track_buffer),
        association=dataclasses.replace(config.association, same_camera_gap_s=NO_SAME_CAMERA_LINKS_S))


def run_one(video: Path, name: str, detector: str, backend: Any, gt_dirs: dict[str, Path], out: Path,
            max_frames: int | None, config: Any = None, detections_dir: Path | None = None) -> dict[str, Any]:
    """One pipeline run scored against each ground truth of ``gt_dirs`` (result key -> folder, see
    :data:`SCORINGS`); ``detections_dir``: det files instead of the detector."""
    from reid_edge.pipeline.mtmc_eval import evaluate_mtmc
    from reid_edge.pipeline.runner import run_pipeline

    out.mkdir(parents=True, exist_ok=True)
    summary = run_pipeline([str(video)], out, backend, detector=detector, detections_dir=detections_dir,
                           camera_names=[name], config=config, max_frames=max_frames, device="cpu")
    cam = summary["cameras"][name]
    result: dict[str, Any] = {key: evaluate_mtmc(out, d)["cameras"][name] for key, d in gt_dirs.items()}
    result.update({"fps": cam["fps"], "frames": cam["frames"],
                   "stage_ms_per_frame": summary["stage_ms_per_frame"], "embeddings": summary["embeddings"]})
    return result


def format_table(results: dict[str, dict[str, dict[str, Any]]], key: str = "metrics") -> str:
    """Markdown table: one row per sequence and detector, every number in full (``key``: which
    scoring, a key of :data:`SCORINGS`; rows without it are left out)."""
    lines = ["| sequence | detector | HOTA | MOTA | IDF1 | ID switches | recall | precision | frames/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for seq, by_det in results.items():
        for det, r in by_det.items():
            if key not in r:
                continue
            m = r[key]
            lines.append(f"| {seq} | {det} | {m['hota']:.3f} | {m['mota']:.3f} | {m['idf1']:.3f} | "
                         f"{int(m['num_switches'])} | {m['recall']:.3f} | {m['precision']:.3f} | {r['fps']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS), type=detector_choice,
                    help=f"{', '.join(DETECTORS)}; yolox and yolox-int8 may end in @SIZE (input long side)")
    ap.add_argument("--sequences", nargs="+", default=list(SEQUENCES), choices=list(SEQUENCES))
    ap.add_argument("--model", default=None, help="re-ID model (default: the packaged default)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="keep run outputs and INT8 exports here")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=None,
                    help="pipeline YAML (tracker/reid/association sections), as for reid-edge run --config")
    ap.add_argument("--det-cache", type=Path, default=None,
                    help="keep each detector's boxes here as det files and run on them (frames/s then "
                         "leaves out the detector)")
    ap.add_argument("--gt-same-person", nargs="+", type=same_person, default=[], metavar="ID=ID",
                    help="also score with these ground-truth ids as one person (with one --sequences)")
    ap.add_argument("--gt-all-rows", action="store_true",
                    help="also score with the ground truth's rows marked not considered as people")
    ap.add_argument("--mot-convention", action="store_true",
                    help="no re-identification of a person who left the view (MOTChallenge's ids)")
    args = ap.parse_args(argv)
    if args.gt_same_person and len(args.sequences) != 1:
        ap.error("--gt-same-person names ids of one sequence: give one --sequences")
    config = load_config(args.config)
    if args.mot_convention:
        config = mot_convention(config)
    same = dict(args.gt_same_person)

    from reid_edge.backends import load_backend
    from reid_edge.models import resolve

    backend = load_backend(resolve(args.model), device="cpu")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    reports: dict[str, Any] = {}
    int8_specs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reid-edge-mot15.") as tmp:
        work = args.out or Path(tmp)
        for seq in args.sequences:
            video, gt, scale = sequence_files(args.data, seq)
            gt_dirs = write_scorings(gt, scale, work / seq, seq, args.max_frames, same, args.gt_all_rows)
            results[seq] = {}
            for det in args.detectors:
                name, _, size = det.partition("@")
                spec = name
                cache = args.det_cache / det if args.det_cache is not None else None
                cached = cache is not None and (cache / f"{seq}.txt").is_file()  # stands for the detector
                if name == "yolox-int8" and not cached:
                    if seq not in int8_specs:  # one calibration per sequence, whatever the sizes
                        int8_specs[seq], reports[seq] = int8_detector(video, gt, scale, work / seq / "detector")
                    spec = int8_specs[seq]
                if size:
                    spec += f"@{size}"
                if cache is not None:
                    cached_detections(video, spec, cache / f"{seq}.txt")
                print(f"{seq}: {det} ...", file=sys.stderr, flush=True)
                results[seq][det] = run_one(video, seq, spec, backend, gt_dirs, work / seq / det, args.max_frames,
                                            config, cache)
                r = results[seq][det]
                print(f"  HOTA {r['metrics']['hota']:.3f} MOTA {r['metrics']['mota']:.3f} "
                      f"IDF1 {r['metrics']['idf1']:.3f} {r['fps']:.1f} frames/s; ms/frame "
                      + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_ms_per_frame"].items()),
                      file=sys.stderr, flush=True)
    if args.mot_convention:
        print("(MOT convention: a person who left the view is a new person)")
    print(format_table(results))
    if args.det_cache is not None:
        print(f"(detections from {args.det_cache}: frames/s leaves out the detector)")
    same_text = ", ".join(f"{a}={b}" for a, b in same.items())
    for key, (_, _, heading) in SCORINGS.items():
        if heading and any(key in r for by_det in results.values() for r in by_det.values()):
            print(f"\nThe same runs, {heading.format(same=same_text)}:\n" + format_table(results, key))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from reid_edge.io import atomic_write_text
        doc = {"results": results, "int8_reports": reports, "mot_convention": args.mot_convention}
        atomic_write_text(args.json, json.dumps(doc, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
