"""Fakes shared by the pipeline tests: a colour-histogram re-id backend and a tiny two-camera scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reid_edge.backends.base import Backend
from reid_edge.card import ModelCard

BINS = 6


class HistBackend(Backend):
    """Embedding = normalized per-channel colour histogram; stripes = histograms of horizontal bands."""

    name = "fake-hist"

    def __init__(self, stripes: int = 2) -> None:
        self.card = ModelCard(backbone="fake-hist", input_height=32, input_width=16, global_dim=3 * BINS,
                              num_stripes=stripes, stripe_dim=3 * BINS, lambda_g=0.5)

    @staticmethod
    def _hist(x: np.ndarray) -> np.ndarray:
        # x: [3, h, w] normalized; values of a uint8 image land in about [-2.2, 2.7]
        edges = np.linspace(-2.5, 2.9, BINS + 1)
        h = np.concatenate([np.histogram(x[c], bins=edges)[0] for c in range(3)]).astype(np.float32)
        return h / max(float(np.linalg.norm(h)), 1e-12)

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        s = self.card.num_stripes
        g = np.stack([self._hist(im) for im in images])
        bands = np.array_split(np.arange(images.shape[2]), s)
        st = np.stack([np.stack([self._hist(im[:, b]) for b in bands]) for im in images])
        return {"embedding": g, "stripes": st}


class OracleBackend(HistBackend):
    """Embedding = one-hot of the person's colour index, recovered from the crop's mean colour.

    Stands in for a perfect re-id model: appearance is fully informative.
    """

    name = "fake-oracle"

    def __init__(self, colours: list[tuple[int, int, int]]) -> None:
        n = len(colours)
        self.card = ModelCard(backbone="fake-oracle", input_height=32, input_width=16, global_dim=n,
                              num_stripes=1, stripe_dim=n, lambda_g=1.0)
        self.colours = np.array(colours, dtype=np.float32)

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        card = self.card
        mean = np.array(card.mean, np.float32)[:, None, None]
        std = np.array(card.std, np.float32)[:, None, None]
        out = np.zeros((len(images), len(self.colours)), np.float32)
        for i, im in enumerate(images):
            rgb = (im * std + mean) * 255.0
            c, h, w = rgb.shape
            centre = rgb[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4].reshape(3, -1).mean(1)[::-1]  # -> BGR
            out[i, int(np.argmin(np.linalg.norm(self.colours - centre[None], axis=1)))] = 1.0
        return {"embedding": out, "stripes": out[:, None, :]}


COLOURS = [(40, 40, 200), (40, 200, 40), (200, 40, 40), (40, 200, 200), (200, 40, 200), (200, 200, 40)]


def make_scene(out: Path, people: int = 3, frames: int = 60, size: tuple[int, int] = (320, 240),
               noise_seed: int = 0, colours: list[int] | None = None) -> dict[str, list[int]]:
    """Write ``cam1.mp4``, ``cam2.mp4`` with ``*.gt.txt`` and noisy ``*.det.txt`` files.

    Person k (a solid coloured 24x60 box, distinct colour) walks across cam1 and then, 8 frames
    (0.8 s at 10 fps) after leaving it, across cam2 in the other direction; they enter
    staggered by ``frames // (2 * people)``.
    ``colours``: the colour index of each person (default: person k wears colour k).
    Returns ``{camera: [person ids]}``.
    """
    rng = np.random.default_rng(noise_seed)
    w, h = size
    out.mkdir(parents=True, exist_ok=True)
    half = frames // 2
    for cam_i, cam in enumerate(("cam1", "cam2")):
        writer = cv2.VideoWriter(str(out / f"{cam}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
        gt_lines, det_lines = [], []
        for f in range(1, frames + 1):
            img = np.full((h, w, 3), 128, np.uint8)
            for k in range(people):
                start = k * max(1, half // (people + 1)) + (half + 4 if cam_i == 1 else 0)
                t = f - start
                dur = half - 4
                if not 0 <= t < dur:
                    continue
                frac = t / dur
                x = int(8 + frac * (w - 40)) if cam_i == 0 else int(w - 32 - frac * (w - 40))
                y = 40 + 50 * k % (h - 100)
                bw, bh = 24, 60
                colour = COLOURS[(colours[k] if colours is not None else k) % len(COLOURS)]
                cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), colour, -1)
                gt_lines.append(f"{f},{k + 1},{x},{y},{bw},{bh},1,-1,-1,-1\n")
                if rng.random() < 0.95:
                    jx, jy = rng.normal(0, 1.0, 2)
                    det_lines.append(f"{f},-1,{x + jx:.1f},{y + jy:.1f},{bw},{bh},{0.7 + 0.3 * rng.random():.2f},"
                                     "-1,-1,-1\n")
            writer.write(img)
        writer.release()
        (out / f"{cam}.gt.txt").write_text("".join(gt_lines))
        (out / f"{cam}.det.txt").write_text("".join(det_lines))
    return {"cam1": list(range(1, people + 1)), "cam2": list(range(1, people + 1))}


class GroundTruthOracle:
    """Perfect appearance for a scene with ground truth: each detection's crop is tagged with the id
    of the GT box it overlaps, and :class:`OracleEmbedBackend` embeds a crop as the one-hot of that id.

    Only the appearance is an oracle; detection, tracking and the cross-camera matcher are the real ones.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.ids: dict[bytes, int] = {}

    def wrap(self, detector: object, gt_path: Path) -> object:
        from reid_edge.pipeline.detectors import Detector
        from reid_edge.pipeline.motfile import read_mot_tracks as read_mot
        from reid_edge.pipeline.tracker import iou_matrix

        gt = read_mot(gt_path, is_gt=True)
        ids = self.ids

        class Tagging(Detector):
            def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
                dets = detector.detect(frame, frame_index)  # type: ignore[attr-defined]
                g = gt.get(frame_index)
                h, w = frame.shape[:2]
                for box in dets[:, :4].astype(np.float64):
                    pid = 0
                    if g is not None:
                        iou = iou_matrix(box[None], g[1])[0]
                        if iou.max() > 0.3:
                            pid = int(g[0][int(iou.argmax())])
                    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
                    x2, y2 = min(w, int(np.ceil(box[0] + box[2]))), min(h, int(np.ceil(box[1] + box[3])))
                    ids[np.ascontiguousarray(frame[y1:y2, x1:x2]).tobytes()] = pid
                return dets

        return Tagging()

    def backend(self) -> Backend:
        oracle = self

        class OracleEmbedBackend(HistBackend):
            name = "fake-gt-oracle"

            def __init__(self) -> None:
                self.card = ModelCard(backbone="fake-gt-oracle", input_height=32, input_width=16,
                                      global_dim=oracle.dim, num_stripes=1, stripe_dim=oracle.dim, lambda_g=1.0)
                self.rng = np.random.default_rng(0)

            def embed(self, crops, batch_size=32):  # type: ignore[no-untyped-def,override]
                from reid_edge.backends.base import Embeddings

                g = np.zeros((len(crops), oracle.dim), np.float32)
                for i, c in enumerate(crops):
                    pid = oracle.ids.get(np.ascontiguousarray(c).tobytes(), 0)
                    if pid > 0:
                        g[i, pid % oracle.dim] = 1.0
                    else:  # background or unknown: a random direction
                        v = self.rng.normal(size=oracle.dim)
                        g[i] = v / np.linalg.norm(v)
                return Embeddings(g, g[:, None, :].copy())

        return OracleEmbedBackend()
