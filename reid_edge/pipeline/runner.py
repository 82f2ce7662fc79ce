"""Orchestration of the multi-camera pipeline: decode -> detect -> track -> embed -> associate -> write.

Cameras advance in lock-step on their own clocks (frame index / fps): each step reads the
cameras whose next frame is due, so cameras of different frame rates stay aligned in time.
Crops chosen for embedding (:mod:`.reid`) across all cameras of a step go to the backend as one
batch. Everything here orchestrates; the decisions live in pure functions (tracker assignment,
embedding schedule, cross-camera matcher).

This module imports numpy, OpenCV and scipy only; the re-id model comes through the Backend
protocol, so an ONNX or TensorRT model runs without torch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..artifacts import DEFAULT_MODEL_SEARCH
from ..backends.base import Backend
from ..errors import CheckpointError, PipelineError
from ..names import DEFAULT_DETECTOR
from .associate import AssociationConfig, Associator, TrackletEvent, readiness, resolve_gate, resolve_same_camera_gate
from .detectors import Detector
from .layout import CameraLayout
from .outputs import ResultWriter, Row, annotate
from .reid import Appearance, EmbedState, ReidConfig, box_quality, schedule
from .sources import FrameSource
from .tracker import ByteTracker, Track, TrackerConfig, resolve_appearance_gate, resolve_refind_young

GALLERY_FLUSH_S = 5.0  # how often appearance refinements of known people reach --gallery

STAGES = ("decode", "detect", "track", "embed", "associate", "output")


def find_default_model(root: str | Path = ".") -> Path:
    """The first existing file of :data:`DEFAULT_MODEL_SEARCH` under ``root``, else the packaged default.

    Raises:
        CheckpointError: none exists and the packaged model is missing from the installation.
    """
    from ..models import packaged_path

    base = Path(root)
    for rel in DEFAULT_MODEL_SEARCH:
        p = base / rel
        if p.is_file():
            return p
    try:
        return packaged_path("default")
    except CheckpointError as exc:
        raise CheckpointError("no --model given and no default model found (searched "
                              + ", ".join(str(base / r) for r in DEFAULT_MODEL_SEARCH) + f"; {exc})") from None


@dataclass(frozen=True)
class PipelineConfig:
    """Every tunable of a run, grouped by stage."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    reid: ReidConfig = field(default_factory=ReidConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)

    def with_overrides(self, reid_every: int | None = None, embed_budget: int | None = None,
                       max_distance: float | None = None) -> PipelineConfig:
        """This config with the values of ``reid-edge run``'s flags that were given (None: keep)."""
        reid, assoc = self.reid, self.association
        if reid_every is not None:
            reid = dataclasses.replace(reid, every_k=reid_every)
        if embed_budget is not None:
            reid = dataclasses.replace(reid, max_per_step=embed_budget)
        if max_distance is not None:
            assoc = dataclasses.replace(assoc, max_distance=max_distance)
        return dataclasses.replace(self, reid=reid, association=assoc)


@dataclass
class Tracklet:
    """A per-camera track as the pipeline follows it, until and after its global id is decided."""

    camera: str
    track: Track
    start_s: float
    end_s: float
    embed: EmbedState = field(default_factory=EmbedState)
    appearance: Appearance = field(default_factory=Appearance)
    pending: list[Row] = field(default_factory=list)
    rows: int = 0  # rows of track.history already taken
    gid: int | None = None
    decided_frame: int | None = None
    distance: float | None = None
    finished: bool = False
    sent: tuple[int, float, bool] | None = None  # what the associator last heard of it

    @property
    def first_frame(self) -> int:
        return self.track.history[0][0] if self.track.history else self.track.start_frame

    @property
    def last_frame(self) -> int:
        return self.track.history[-1][0] if self.track.history else self.track.last_frame


@dataclass
class CameraState:
    source: FrameSource
    detector: Detector
    tracker: ByteTracker
    tracklets: dict[int, Tracklet] = field(default_factory=dict)
    frames: int = 0
    frame_index: int = 0
    done: bool = False
    next_time: float = 0.0
    video: Any = None
    active_s: float = 0.0  # wall time from the start until this camera ended
    confirmed_tracks: int = 0


class Pipeline:
    """One multi-camera run. Build it, then call :meth:`run` once."""

    def __init__(self, sources: list[FrameSource], detectors: list[Detector], backend: Backend, writer: ResultWriter,
                 config: PipelineConfig | None = None, layout: CameraLayout | None = None,
                 video_dir: str | Path | None = None, show: bool = False,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 gallery: Any = None, fleet: Any = None, fleet_wait_s: float = 120.0) -> None:
        """``fleet``: a :class:`~reid_edge.fleet.edge.RemoteAssociator` when a central associator
        decides (``run --publish``); its decisions arrive some steps later, and at the end the
        run waits up to ``fleet_wait_s`` for the last ones."""
        if len(sources) != len(detectors):
            raise PipelineError("one detector per camera is needed")
        self.config = config or PipelineConfig()
        self.backend = backend
        self.writer = writer
        self.layout = layout
        self.video_dir = Path(video_dir) if video_dir is not None else None
        self.show = show
        self.progress = progress
        card = getattr(backend, "card", None)
        self.track_gate, self.track_gate_source = resolve_appearance_gate(self.config.tracker.max_appearance_dist, card)
        self.refind_young, self.refind_young_source = resolve_refind_young(self.config.tracker.refind_young, card)
        tracker_config = dataclasses.replace(self.config.tracker, max_appearance_dist=self.track_gate,
                                             refind_young=self.refind_young)
        self.cams = [CameraState(s, d, ByteTracker(tracker_config)) for s, d in zip(sources, detectors)]
        lam = self.config.association.lambda_g
        self.lambda_g = float(lam if lam is not None else getattr(card, "lambda_g", 0.5))
        self.max_distance, self.max_distance_source = resolve_gate(self.config.association.max_distance, card)
        self.same_camera_gate, self.same_camera_gate_source = resolve_same_camera_gate(
            self.config.association.same_camera_max_distance, card)
        self.global_dim = int(getattr(card, "global_dim", 1))
        self.fleet = fleet
        self.fleet_wait_s = fleet_wait_s
        self.associator: Any = fleet if fleet is not None else Associator(
            self.config.association, self.lambda_g, self.global_dim, layout, gallery, max_distance=self.max_distance,
            same_camera_max_distance=self.same_camera_gate)
        if fleet is not None:
            fleet.start(self.lambda_g, self.global_dim, card, self.max_distance, self.same_camera_gate)
        self._submitted: dict[str, tuple[CameraState, Tracklet]] = {}  # event id -> tracklet awaiting its id
        self._clock = 0.0
        self._flushed = time.perf_counter()
        self.timers = dict.fromkeys(STAGES, 0.0)
        self.embeddings = 0
        self.embed_batches = 0
        self.dropped_tracklets = 0
        self.interrupted = False
        self.wall_s = 0.0
        # (camera index, box) -> (global, stripes) embedded this step by a tracker, reused by _embed
        self._frame_embeddings: dict[tuple[int, tuple[float, ...]], tuple[np.ndarray, np.ndarray | None]] = {}
        self._start = time.perf_counter()

    # -- per-step work ------------------------------------------------------------------------------
    def _tic(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timers[stage] += t1 - t0
        return t1

    def _take_rows(self, tl: Tracklet) -> None:
        new = tl.track.history[tl.rows:]
        if not new:
            return
        rows: list[Row] = [(int(f), x, y, w, h, c) for f, x, y, w, h, c in new]
        tl.rows += len(rows)
        if tl.gid is None:
            tl.pending.extend(rows)
        else:
            self.writer.write_rows(tl.camera, tl.gid, rows)

    def _time_of(self, cam: CameraState, frame: int) -> float:
        return (frame - 1) / cam.source.fps

    def _embed_boxes(self, ci: int, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The tracker's on-demand embeddings of this frame's boxes (kept for the scheduler's reuse)."""
        t0 = time.perf_counter()
        emb = self.backend.embed([crop_box(image, b) for b in boxes], batch_size=self.config.reid.batch_size)
        self.embeddings += len(boxes)
        self.embed_batches += 1
        for i, b in enumerate(boxes):
            stripes = emb.stripes[i] if emb.stripes is not None and emb.stripes.size else None
            self._frame_embeddings[(ci, tuple(float(v) for v in b[:4]))] = (emb.global_[i], stripes)
        self._tic("embed", t0)
        return np.asarray(emb.global_, dtype=np.float64)

    def _step_camera(self, ci: int, cam: CameraState, max_frames: int | None) -> tuple[Any, list[Track]] | None:
        t0 = time.perf_counter()
        frame = None
        if max_frames is None or cam.frames < max_frames:
            frame = cam.source.read()
        t0 = self._tic("decode", t0)
        if frame is None:
            cam.done = True
            cam.active_s = time.perf_counter() - self._start
            for tr in cam.tracker.finish_all():
                self._finish(cam, tr)
            self._tic("track", t0)
            return None
        cam.frame_index = frame.index
        cam.next_time = frame.index / cam.source.fps
        dets = cam.detector.detect(frame.image, frame.index)
        t0 = self._tic("detect", t0)
        embed_s = self.timers["embed"]
        active, finished = cam.tracker.update(dets, frame=frame.index,
                                              embed=lambda boxes: self._embed_boxes(ci, frame.image, boxes),
                                              can_merge=lambda tid: self._unpublished(cam, tid))
        t0 += self.timers["embed"] - embed_s  # the tracker's on-demand embeddings count as embed time
        for young, into in cam.tracker.merged:  # a young track turned out to be a lost one, re-found
            self._merge(cam, young, into)
        cam.frames += 1  # counted once fully processed (an interrupt in detect leaves it out)
        now = frame.time_s
        for tr in active:
            tl = cam.tracklets.get(tr.track_id)
            if tl is None:
                tl = Tracklet(cam.source.name, tr, self._time_of(cam, tr.history[0][0]), now)
                cam.tracklets[tr.track_id] = tl
                cam.confirmed_tracks += 1
            tl.end_s = now
        for tr in finished:
            self._finish(cam, tr)
        self._tic("track", t0)
        if self.progress is not None:
            total = cam.source.frame_count
            if max_frames is not None:
                total = min(total, max_frames) if total else max_frames
            self.progress(cam.source.name, cam.frames, total)
        return frame, active

    @staticmethod
    def _unpublished(cam: CameraState, track_id: int) -> bool:
        """Nothing of this track has gone to the associator yet (so it can still be merged into another)."""
        tl = cam.tracklets.get(track_id)
        return tl is None or tl.sent is None

    @staticmethod
    def _merge(cam: CameraState, young: int, into: int) -> None:
        """The tracker merged track ``young`` into ``into``: its rows are in ``into``'s history now, so
        what the pipeline kept of it goes, but its crops' appearance joins ``into``'s tracklet."""
        tl = cam.tracklets.pop(young, None)
        if tl is None:
            return
        cam.confirmed_tracks -= 1
        target = cam.tracklets.get(into)
        if target is not None:
            target.appearance.merge(tl.appearance)
            target.embed.count += tl.embed.count

    def _finish(self, cam: CameraState, tr: Track) -> None:
        tl = cam.tracklets.get(tr.track_id)
        if tl is None:
            return
        self._take_rows(tl)
        tl.finished = True
        tl.end_s = self._time_of(cam, tl.last_frame)

    def _embed(self, stepped: dict[int, tuple[Any, list[Track]]]) -> None:
        t0 = time.perf_counter()
        cfg = self.config.reid
        candidates: list[tuple[Any, EmbedState, float]] = []
        frame_of: dict[Any, int] = {}
        info: dict[Any, tuple[Any, Tracklet, np.ndarray, float]] = {}
        for ci, (frame, active) in stepped.items():
            if not active:
                continue
            cam = self.cams[ci]
            boxes = np.array([tr.det_box for tr in active])
            h, w = frame.image.shape[:2]
            quality = box_quality(boxes, w, h, cfg.ref_height)
            for tr, box, q in zip(active, boxes, quality):
                key = (ci, tr.track_id)
                tl = cam.tracklets[tr.track_id]
                candidates.append((key, tl.embed, float(q)))
                frame_of[key] = frame.index
                info[key] = (frame, tl, box, float(q))
        chosen = schedule(candidates, frame_of, cfg)
        crops: list[np.ndarray] = []
        owners: list[tuple[Tracklet, float, int]] = []
        momentum = self.config.tracker.appearance_momentum
        for chosen_key in chosen:
            frame, tl, box, q = info[chosen_key]
            ci = cast(tuple[int, int], chosen_key)[0]
            done = self._frame_embeddings.get((ci, tuple(float(v) for v in box[:4])))
            if done is not None:  # the tracker embedded this box already (and folded it into its track)
                self._record(tl, done[0], done[1], q, frame.index)
                continue
            crops.append(crop_box(frame.image, box))
            owners.append((tl, q, frame.index))
        if crops:
            emb = self.backend.embed(crops, batch_size=cfg.batch_size)
            self.embeddings += len(crops)
            self.embed_batches += 1
            for i, (tl, q, fidx) in enumerate(owners):
                stripes = emb.stripes[i] if emb.stripes is not None and emb.stripes.size else None
                self._record(tl, emb.global_[i], stripes, q, fidx)
                tl.track.add_appearance(emb.global_[i], momentum)
        self._tic("embed", t0)

    @staticmethod
    def _record(tl: Tracklet, global_: np.ndarray, stripes: np.ndarray | None, quality: float, frame: int) -> None:
        tl.appearance.add(global_, stripes, quality)
        tl.embed.count += 1
        tl.embed.last_frame = frame
        tl.embed.best_quality = max(tl.embed.best_quality, quality)

    def _tracklet_event(self, tl: Tracklet) -> TrackletEvent:
        g, st = tl.appearance.sums()
        return TrackletEvent(f"{tl.camera}/{tl.track.track_id}", tl.camera, tl.start_s, tl.end_s, g, st,
                             tl.appearance.weight, tl.finished)

    def _associate(self, final: bool = False) -> None:
        t0 = time.perf_counter()
        acfg = self.config.association
        ready: list[tuple[CameraState, Tracklet]] = []
        for cam in self.cams:
            for tid in list(cam.tracklets):
                tl = cam.tracklets[tid]
                self._take_rows(tl)
                if tl.sent is not None:  # submitted: decided, or (fleet) awaiting the decision
                    # the identity's appearance and intervals follow its tracklets as they go on
                    version = (tl.appearance.count, tl.end_s, tl.finished)
                    if version != tl.sent:
                        self.associator.update(self._tracklet_event(tl))
                        tl.sent = version
                    continue
                state = readiness(tl.end_s - tl.start_s, tl.appearance.count, tl.rows, tl.finished or final, acfg)
                if state == "drop":
                    self.dropped_tracklets += 1
                    del cam.tracklets[tid]
                elif state == "decide":
                    ready.append((cam, tl))
        if ready:
            events = [self._tracklet_event(tl) for _, tl in ready]
            for (cam, tl), ev in zip(ready, events):
                tl.decided_frame = cam.frame_index
                tl.sent = (tl.appearance.count, tl.end_s, tl.finished)
                self._submitted[ev.event_id] = (cam, tl)
            for dec in self.associator.decide(events):
                self._apply(dec)
        if self.fleet is not None:
            self.fleet.end_step(self._clock)
            for dec in self.fleet.poll():
                self._apply(dec)
        self._emit_finished()
        gallery = getattr(self.associator, "gallery", None)  # a fleet edge has none: the associator keeps it
        if gallery is not None and (final or time.perf_counter() - self._flushed > GALLERY_FLUSH_S):
            self.associator.flush()  # appearance refinements; decisions are committed as they are made
            self._flushed = time.perf_counter()
        self._tic("associate", t0)

    def _apply(self, dec: Any) -> None:
        """A tracklet's global id is decided: its buffered rows go out."""
        hit = self._submitted.pop(dec.event_id, None)
        if hit is None:
            return
        _, tl = hit
        tl.gid = dec.global_id
        tl.distance = dec.distance
        if tl.pending:
            self.writer.write_rows(tl.camera, tl.gid, tl.pending)
            tl.pending = []

    def _emit_finished(self) -> None:
        for cam in self.cams:
            for tid in [t for t, tl in cam.tracklets.items() if tl.finished and tl.gid is not None]:
                self._event(cam, cam.tracklets.pop(tid))

    def _event(self, cam: CameraState, tl: Tracklet) -> None:
        self.writer.write_event({
            "camera": tl.camera, "camera_id": cam.source.camera_id, "track_id": tl.track.track_id,
            "global_id": tl.gid, "first_frame": tl.first_frame, "last_frame": tl.last_frame,
            "first_s": round(tl.start_s, 3), "last_s": round(tl.end_s, 3), "rows": tl.rows,
            "embeddings": tl.appearance.count, "decided_at_frame": tl.decided_frame,
            "match_distance": None if tl.distance is None else round(tl.distance, 4),
        })

    def _draw(self, stepped: dict[int, tuple[Any, list[Track]]]) -> None:
        import cv2

        for ci, (frame, active) in stepped.items():
            cam = self.cams[ci]
            boxes: list[tuple[float, float, float, float, int | None, int]] = []
            for tr in active:
                tl = cam.tracklets.get(tr.track_id)
                x, y, w, h = (float(v) for v in tr.det_box[:4])
                boxes.append((x, y, w, h, tl.gid if tl else None, tr.track_id))
            img = annotate(frame.image.copy(), boxes)
            if self.video_dir is not None:
                if cam.video is None:
                    h, w = img.shape[:2]
                    path = self.video_dir / f"{cam.source.name}.annotated.mp4"
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
                    cam.video = cv2.VideoWriter(str(path), fourcc, cam.source.fps, (w, h))
                    if not cam.video.isOpened():
                        raise PipelineError(f"cannot write annotated video {path}")
                cam.video.write(img)
            if self.show:
                try:
                    cv2.imshow(f"reid-edge {cam.source.name}", img)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error:
                    raise PipelineError("--show: this OpenCV build has no GUI (headless); use --save-video") from None
                if key in (ord("q"), 27):
                    raise KeyboardInterrupt

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> dict[str, Any]:
        """Process every camera to its end (or ``max_frames`` frames each); returns the summary.

        Ctrl-C (KeyboardInterrupt) stops the loop; outputs are flushed and the summary written
        either way. Any other exception propagates after the same flush.
        """
        start = self._start = time.perf_counter()
        try:
            while True:
                live = [c for c in self.cams if not c.done]
                if not live:
                    break
                clock = min(c.next_time for c in live)
                self._clock = clock
                stepped: dict[int, tuple[Any, list[Track]]] = {}
                for ci, cam in enumerate(self.cams):
                    if cam.done or cam.next_time > clock + 1e-6:
                        continue
                    res = self._step_camera(ci, cam, max_frames)
                    if res is not None:
                        stepped[ci] = res
                self._embed(stepped)
                self._frame_embeddings.clear()
                self._associate()
                if self.video_dir is not None or self.show:
                    t0 = time.perf_counter()
                    self._draw(stepped)
                    self._tic("output", t0)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            self.wall_s = time.perf_counter() - start
            self._close()
        summary = self.summary()
        self.writer.write_summary(summary)
        return summary

    def _close(self) -> None:
        for cam in self.cams:
            for tr in cam.tracker.finish_all():
                self._finish(cam, tr)
        self._associate(final=True)
        if self.fleet is not None:
            for dec in self.fleet.finish(self._clock, self.fleet_wait_s):
                self._apply(dec)
            self._emit_finished()
        for cam in self.cams:
            if cam.video is not None:
                cam.video.release()
                cam.video = None
            cam.source.close()
        if self.show:
            try:
                import cv2

                cv2.destroyAllWindows()
            except Exception:  # noqa: BLE001 - a headless build has no windows to close
                pass

    def summary(self) -> dict[str, Any]:
        """Identities, cameras per identity, transitions, per-stage time and frames/s."""
        identities: list[dict[str, Any]] = []
        transitions: dict[str, int] = {}
        known = self.associator.identities
        for gid in sorted(g for g, ivs in known.items() if ivs):
            members = sorted(known[gid], key=lambda m: m.start_s)
            cams = sorted({m.camera for m in members})
            for a, b in zip(members, members[1:]):
                if a.camera != b.camera:
                    key = f"{a.camera}->{b.camera}"
                    transitions[key] = transitions.get(key, 0) + 1
            identities.append({"id": gid, "cameras": cams, "tracklets": len(members),
                               "first_s": round(members[0].start_s, 2),
                               "last_s": round(max(m.end_s for m in members), 2)})
        wall = max(self.wall_s, 1e-9)
        total_frames = sum(c.frames for c in self.cams)
        cameras = {}
        for c in self.cams:
            cameras[c.source.name] = {
                "camera_id": c.source.camera_id, "source": c.source.spec, "frames": c.frames,
                # frames/s while the camera was live (cameras of different lengths end at different times)
                "fps": round(c.frames / max(c.active_s or wall, 1e-9), 2), "source_fps": c.source.fps,
                "corrupt_frames": c.source.corrupt_frames, "reconnects": c.source.reconnects,
                "tracks": c.confirmed_tracks,
            }
        return {
            "cameras": cameras,
            "identities": identities,
            "num_identities": len(identities),
            "cross_camera_identities": sum(1 for i in identities if len(i["cameras"]) > 1),
            "transitions": transitions,
            "stage_seconds": {k: round(v, 4) for k, v in self.timers.items()},
            "stage_ms_per_frame": {k: round(1000 * v / max(total_frames, 1), 3) for k, v in self.timers.items()},
            "wall_seconds": round(wall, 3),
            "embeddings": self.embeddings,
            "embed_batches": self.embed_batches,
            "dropped_tracklets": self.dropped_tracklets,
            "rows_written": self.writer.rows_written,
            "interrupted": self.interrupted,
            "lambda_g": self.lambda_g,
            "max_distance": self.max_distance,
            "max_distance_source": self.max_distance_source,
            "track_gate": self.track_gate,
            "track_gate_source": self.track_gate_source,
            "refind_young": self.refind_young,
            "refind_young_source": self.refind_young_source,
            "same_camera_gate": self.same_camera_gate,
            "same_camera_gate_source": self.same_camera_gate_source,
            **({"fleet": self.fleet.stats()} if self.fleet is not None else {}),
            "config": {
                "tracker": _asdict(self.config.tracker), "reid": _asdict(self.config.reid),
                "association": _asdict(self.config.association),
            },
        }


def crop_box(image: np.ndarray, box: np.ndarray, min_size: int = 4) -> np.ndarray:
    """The pixels of box ``x, y, w, h`` (clipped to the image, at least ``min_size`` px each way)."""
    h, w = image.shape[:2]
    x1 = int(np.clip(np.floor(box[0]), 0, max(w - min_size, 0)))
    y1 = int(np.clip(np.floor(box[1]), 0, max(h - min_size, 0)))
    x2 = int(np.clip(np.ceil(box[0] + box[2]), x1 + min_size, w))
    y2 = int(np.clip(np.ceil(box[1] + box[3]), y1 + min_size, h))
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def _asdict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def run_pipeline(cameras: list[str], out_dir: str | Path, backend: Backend, detector: str = DEFAULT_DETECTOR,
                 detections_dir: str | Path | None = None, camera_names: list[str] | None = None,
                 layout: CameraLayout | None = None, config: PipelineConfig | None = None,
                 max_frames: int | None = None, save_video: bool = False, show: bool = False,
                 skip_bad_cameras: bool = False, device: str = "auto",
                 warn: Callable[[str], None] | None = None,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 gallery: Any = None, fleet: Callable[[list[FrameSource]], Any] | None = None,
                 fleet_wait_s: float = 120.0) -> dict[str, Any]:
    """Library entry: open cameras, build detectors, run, return the summary.

    ``out_dir`` must exist (the CLI prepares it). ``gallery``: an open
    :class:`~.gallery.IdentityGallery` whose people keep their ids (the caller closes it).
    Raises :class:`PipelineError` for cameras
    that cannot be opened (unless ``skip_bad_cameras``) and bad detector settings.
    ``fleet``: builds the edge's link to a central associator from the opened cameras
    (:func:`reid_edge.fleet.edge.open_edge`); it is closed when the run ends.
    """
    from .detectors import make_detector
    from .sources import open_sources

    fps = layout.fps_by_name() if layout is not None else None
    if layout is not None and camera_names is None and layout.cameras and len(layout.cameras) == len(cameras):
        camera_names = [c.name for c in layout.cameras]
    sources = open_sources(cameras, camera_names, fps=fps, skip_bad=skip_bad_cameras, warn=warn)
    try:
        detectors = [make_detector(detector, s.name, detections_dir, device=device) for s in sources]
    except BaseException:
        for s in sources:
            s.close()
        raise
    out = Path(out_dir)
    try:
        remote = fleet(sources) if fleet is not None else None
    except BaseException:
        for s in sources:
            s.close()
        raise
    try:
        with ResultWriter(out, [(s.name, s.camera_id) for s in sources]) as writer:
            pipe = Pipeline(sources, detectors, backend, writer, config, layout,
                            video_dir=out if save_video else None, show=show, progress=progress, gallery=gallery,
                            fleet=remote, fleet_wait_s=fleet_wait_s)
            return pipe.run(max_frames=max_frames)
    finally:
        if remote is not None:
            remote.close()


def run_cameras(cameras: list[str], out_dir: str | Path, model: str | Path, *, overwrite: bool = False,
                device: str = "auto", gallery: str | Path | None = None, gallery_config: Any = None,
                **options: Any) -> dict[str, Any]:
    """``reid-edge run`` as a function: prepare ``out_dir``, open ``model``, :func:`run_pipeline`, close.

    Args:
        model: checkpoint, ONNX model or engine (its format is read from the content), or a packaged
            model's name (:func:`reid_edge.models.resolve`).
        gallery: an SQLite identity gallery file (:mod:`.gallery`; created when missing) whose
            people keep their ids; ``gallery_config`` its :class:`~.gallery.GalleryConfig`.
        options: the other keyword arguments of :func:`run_pipeline`.
    Raises:
        ConfigError: ``out_dir`` is not empty and ``overwrite`` is off; see :func:`run_pipeline`.
        GalleryError: the gallery file is not a gallery, is corrupt, or was built with another model.
    """
    from ..io import prepare_out_dir
    from ..models import load_model

    with load_model(model, device=device) as backend:
        store = None
        if gallery is not None:
            from .gallery import GalleryConfig, IdentityGallery, model_key

            card = getattr(backend, "card", None)
            store = IdentityGallery(gallery, int(getattr(card, "global_dim", 1)), model_key(card),
                                    gallery_config or GalleryConfig())
        try:
            out = prepare_out_dir(out_dir, overwrite=overwrite)
            return run_pipeline(list(cameras), out, backend, device=device, gallery=store, **options)
        finally:
            if store is not None:
                store.close()

