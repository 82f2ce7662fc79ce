"""Re-identification evaluation through the Backend protocol, without torch.

Features come from any :class:`reid_edge.backends.Backend` (ONNX Runtime, TensorRT, a
checkpoint, or the trainer's in-memory model wrapped by ``reid_edge.train.evaluate``), so
training-time evaluation, ``reid-edge eval``, the INT8 report and the benchmarks rank with the
same code (:mod:`reid_edge.metrics`).

The protocol never changes silently: :func:`read_test_split` accepts a dataset with an explicit
query/gallery split (Market-1501 / DukeMTMC-reID ``query/`` + ``bounding_box_test/``, CUHK03-NP,
MSMT17 lists) and refuses anything else, unless all-against-all evaluation of a folder of
Market-named crops is asked for by name (``fmt="folder"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .backends.base import Backend
from .errors import DataError
from .metrics import evaluate_rank, re_ranking
from .names import EVAL_DATA_FORMATS
from .preprocess import read_bgr

EVAL_FORMATS = ("auto", *EVAL_DATA_FORMATS)


class Crop(Protocol):
    """What evaluation needs of a dataset record (:class:`reid_edge.datasets.Sample`); read-only, so a
    frozen dataclass fits."""

    @property
    def path(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def camid(self) -> int: ...


def read_test_split(root: str | Path, fmt: str = "auto",
                    cuhk03_variant: str = "detected") -> tuple[str, list[Any], list[Any]]:
    """The query and gallery of a labelled test split, and the protocol's name.

    Args:
        fmt: ``auto`` (by content), a layout name, or ``folder`` (explicitly: every crop of a
            folder of Market-named crops queries all the others).
    Returns:
        ``(format, query, gallery)``.
    Raises:
        DataError: the folder holds no query/gallery split of a known layout, or unreadable images.
    """
    from reid_edge.datasets import (
        check_readable,
        has_market_test_split,
        read_cuhk03,
        read_folder,
        read_market_layout,
        read_msmt17,
    )

    r = Path(root)
    if not r.is_dir():
        raise DataError(f"dataset folder {r} does not exist")
    if fmt not in EVAL_FORMATS:
        raise DataError(f"unknown evaluation format {fmt!r} (use {', '.join(EVAL_FORMATS)})")
    if fmt == "auto":
        if (r / "list_query.txt").is_file() and (r / "list_gallery.txt").is_file():
            fmt = "msmt17"
        elif (r / "detected").is_dir() or (r / "labeled").is_dir():
            fmt = "cuhk03"
        elif has_market_test_split(r):
            from reid_edge.datasets import detect_format

            fmt = detect_format(r)
        else:
            raise DataError(
                f"{r} has no query/gallery split: expected query/ and bounding_box_test/ (Market-1501, "
                "DukeMTMC-reID), detected/ or labeled/ (CUHK03-NP), or list_query.txt and list_gallery.txt "
                "(MSMT17). To rank every crop of a folder of Market-named crops against the others, "
                "pass --format folder")
    if fmt in ("market1501", "dukemtmc"):
        if not has_market_test_split(r):
            raise DataError(f"{r} lacks query/ or bounding_box_test/, which the {fmt} protocol needs")
        data = read_market_layout(r, name=fmt)
    elif fmt == "cuhk03":
        data = read_cuhk03(r, cuhk03_variant)
    elif fmt == "msmt17":
        data = read_msmt17(r)
    else:
        data = read_folder(r)
        labelled = check_readable([s for s in data.train if s.pid >= 0])
        return "folder (all against all)", labelled, labelled
    if not data.query or not data.gallery:
        raise DataError(f"{r} has an empty query or gallery")
    return fmt, check_readable(data.query), check_readable(data.gallery)


def extract_features(backend: Backend, samples: Sequence[Crop], batch_size: int = 64,
                     progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Embed the crops of ``samples`` (read as BGR) with ``backend``.

    Returns:
        ``(global [N, D], stripes [N, S, d])`` float32, L2-normalized; ``S = 0`` for global-only models.
    Raises:
        DataError: an image cannot be read.
    """
    g_parts: list[np.ndarray] = []
    s_parts: list[np.ndarray] = []
    for start in range(0, len(samples), batch_size):
        crops = [read_bgr(s.path) for s in samples[start:start + batch_size]]
        emb = backend.embed(crops, batch_size=batch_size)
        g_parts.append(emb.global_)
        s_parts.append(emb.stripes)
        if progress is not None:
            progress(len(crops))
    if not g_parts:
        c = backend.card
        return np.zeros((0, c.global_dim), np.float32), np.zeros((0, c.num_stripes, c.stripe_dim), np.float32)
    return np.concatenate(g_parts), np.concatenate(s_parts)


@dataclass(frozen=True)
class EvalResult:
    """Retrieval metrics (all in [0, 1]) and the CMC curve."""

    mAP: float
    cmc: np.ndarray
    num_query: int
    num_gallery: int
    num_valid_queries: int
    distance: str
    rerank: bool
    mINP: float = float("nan")
    camera_centre: bool = False

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def rank(self, k: int) -> float:
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary written by ``reid-edge eval --json``."""
        return {"mAP": self.mAP, "rank1": self.rank(1), "rank5": self.rank(5), "rank10": self.rank(10),
                "mINP": self.mINP, "num_query": self.num_query, "num_gallery": self.num_gallery,
                "num_valid_queries": self.num_valid_queries, "distance": self.distance, "rerank": self.rerank,
                "camera_centre": self.camera_centre}


def camera_means(feats: np.ndarray, cams: np.ndarray) -> dict[int, np.ndarray]:
    """The mean feature of each camera id in ``cams`` (``feats`` ``[N, D]`` or ``[N, S, d]``)."""
    return {int(c): feats[cams == c].mean(axis=0) for c in np.unique(cams)}


def camera_centre(feats: np.ndarray, cams: np.ndarray, means: dict[int, np.ndarray]) -> np.ndarray:
    """``feats`` minus the mean of each row's camera, renormalised to unit length along the last axis.

    Per-camera centring removes what a camera adds to everyone it sees (light, colour cast,
    viewpoint) and needs no identity labels: ``means`` come from a site's unlabeled crops
    (:func:`camera_means`). A camera without a mean gets the mean of all the means.
    """
    if len(feats) == 0 or not means:
        return feats
    fallback = np.mean(np.stack(list(means.values())), axis=0)
    out = feats - np.stack([means[int(c)] if int(c) in means else fallback for c in cams])
    return (out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)).astype(feats.dtype)


def distance_matrix(a_global: np.ndarray, b_global: np.ndarray, a_stripes: np.ndarray, b_stripes: np.ndarray,
                    a_cams: np.ndarray, b_cams: np.ndarray, distance: str, lambda_g: float,
                    lambda_c: float) -> np.ndarray:
    """``combined``: the paper's test distance (global + stripes + λc·same camera); ``global``: global only.

    For a global-only model (no stripes) ``combined`` is the global distance plus the camera term.
    """
    from reid_edge.distance import combined_distance

    if distance == "combined":
        return combined_distance(a_global, b_global, a_stripes, b_stripes, lambda_g, a_cams, b_cams, lambda_c)
    if distance == "global":
        return combined_distance(a_global, b_global)
    raise DataError(f"unknown distance {distance!r} (use combined or global)")


def evaluate_features(
    q: tuple[np.ndarray, np.ndarray], g: tuple[np.ndarray, np.ndarray],
    query: Sequence[Crop], gallery: Sequence[Crop], *,
    distance: str = "combined", lambda_g: float = 0.5, lambda_c: float = 0.05, rerank: bool = False,
    max_rank: int = 50,
) -> EvalResult:
    """Metrics from already extracted ``(global, stripes)`` features of query and gallery."""
    q_pids = np.array([s.pid for s in query])
    g_pids = np.array([s.pid for s in gallery])
    q_cams = np.array([s.camid for s in query])
    g_cams = np.array([s.camid for s in gallery])
    qg = distance_matrix(q[0], g[0], q[1], g[1], q_cams, g_cams, distance, lambda_g, lambda_c)
    if rerank:
        qq = distance_matrix(q[0], q[0], q[1], q[1], q_cams, q_cams, distance, lambda_g, lambda_c)
        gg = distance_matrix(g[0], g[0], g[1], g[1], g_cams, g_cams, distance, lambda_g, lambda_c)
        qg = re_ranking(qg, qq, gg)
    m = evaluate_rank(qg, q_pids, g_pids, q_cams, g_cams, max_rank)
    return EvalResult(m.mAP, m.cmc, len(query), len(gallery), m.num_valid, distance, rerank, m.mINP)


def evaluate(
    backend: Backend, query: Sequence[Crop], gallery: Sequence[Crop], *,
    batch_size: int = 64, distance: str = "combined", lambda_g: float | None = None, lambda_c: float | None = None,
    rerank: bool = False, progress: Any = None, centre_on: Sequence[Crop] | None = None,
) -> EvalResult:
    """Extract features and compute CMC/mAP/mINP (Market protocol).

    Args:
        centre_on: crops (a site's unlabeled training crops; only their cameras are read) whose
            per-camera mean features are subtracted from query and gallery (:func:`camera_centre`).
        lambda_g: weight of the global distance; None takes the card's value.
        lambda_c: same-camera penalty of the ``combined`` distance; None takes the card's value
            (0.05, the authors' evaluation, for the project's own models; 0 for imported ones).
    """
    if not query or not gallery:
        raise DataError("evaluation needs a non-empty query and gallery")
    qf = extract_features(backend, query, batch_size, progress)
    same = list(query) == list(gallery)
    gf = qf if same else extract_features(backend, gallery, batch_size, progress)
    if centre_on is not None:
        tf = extract_features(backend, centre_on, batch_size, progress)
        tc = np.array([s.camid for s in centre_on])
        means = [camera_means(f, tc) for f in tf]  # global, stripes
        qc, gc = np.array([s.camid for s in query]), np.array([s.camid for s in gallery])
        qf = (camera_centre(qf[0], qc, means[0]), camera_centre(qf[1], qc, means[1]))
        gf = (camera_centre(gf[0], gc, means[0]), camera_centre(gf[1], gc, means[1]))
    result = evaluate_features(qf, gf, query, gallery, distance=distance,
                               lambda_g=backend.card.lambda_g if lambda_g is None else lambda_g,
                               lambda_c=backend.card.lambda_c if lambda_c is None else lambda_c, rerank=rerank)
    return replace(result, camera_centre=centre_on is not None)


@dataclass(frozen=True)
class DatasetEval:
    """:func:`evaluate_artifact`'s answer: the metrics, the model's card and what they were measured on."""

    result: EvalResult
    protocol: str
    model: Path
    card: Any


def evaluate_artifact(model: str | Path | None, data: str | Path, fmt: str = "auto", *, distance: str = "combined",
                      device: str = "auto", batch_size: int = 64, rerank: bool = False,
                      cuhk03_variant: str = "detected", progress: Any = None,
                      camera_centre: bool = False) -> DatasetEval:
    """Evaluate a checkpoint, ONNX model, engine or packaged model (None: the default) on a test split.

    The combined distance uses the card's ``lambda_g`` and ``lambda_c`` (the run's settings; 0 for
    imported models, whose combined distance is the global one). ``camera_centre``: per-camera
    centring with means over the dataset's training crops (identities unused).

    Raises:
        DataError: no query/gallery split (:func:`read_test_split`), unreadable images, or
            ``camera_centre`` without training crops.
        CheckpointError, BackendError: the model cannot be opened.
    """
    from .models import load_model, resolve

    protocol, query, gallery = read_test_split(data, fmt, cuhk03_variant)
    train: list[Any] | None = None
    if camera_centre:
        from .datasets import check_readable, read_dataset

        train = [] if protocol.startswith("folder") else read_dataset(data, protocol, cuhk03_variant).train
        if not train:
            raise DataError(f"--camera-centre takes the cameras' means from training crops, and {data} has none "
                            "(bounding_box_train/ for Market-1501 and DukeMTMC-reID)")
        train = check_readable(train)
    path = resolve(model)
    with load_model(path, device=device) as backend:
        result = evaluate(backend, query, gallery, batch_size=batch_size, distance=distance, rerank=rerank,
                          progress=progress, centre_on=train)
        card = backend.card
    return DatasetEval(result, protocol, path, card)
