"""Retrieval metrics of re-identification: CMC, mAP and mINP under the Market-1501 protocol,
and k-reciprocal re-ranking. Pure numpy (STYLE rule 9), so that evaluation of ONNX models and
engines, the INT8 report and the benchmarks run without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class RankMetrics:
    """Averages over the queries that have a valid match (all in [0, 1]).

    ``cmc[k]``: rank-(k+1) accuracy. ``mAP``: mean average precision. ``mINP``: mean inverse
    negative penalty (Ye et al., TPAMI 2021, as fast-reid reports it): per query, the number of
    true matches divided by the rank of the hardest (last) true match.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> RankMetrics:
    """CMC, mAP and mINP under the Market-1501 protocol.

    For each query, gallery entries with the query's pid AND camera are ignored, as are junk
    entries (pid -1); distractors (pid 0) count as wrong matches. Queries with no valid match
    left are skipped. Ties are broken by gallery order (stable sort).

    Args:
        distmat: ``[Q, G]`` distances (smaller is more similar).
    Raises:
        DataError: shapes disagree or no query has a valid match.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if len(q_pids) != num_q or len(q_camids) != num_q or len(g_pids) != num_g or len(g_camids) != num_g:
        raise DataError(f"distance matrix {distmat.shape} does not match {len(q_pids)} queries / {len(g_pids)} gallery")
    max_rank = max(1, min(max_rank, num_g))
    all_cmc: list[np.ndarray] = []
    all_ap: list[float] = []
    all_inp: list[float] = []
    for i in range(num_q):
        order = np.argsort(distmat[i], kind="stable")  # row by row: a full [Q, G] argsort doubles peak memory
        pids = g_pids[order]
        keep = ~(((pids == q_pids[i]) & (g_camids[order] == q_camids[i])) | (pids == -1))
        hits = (pids[keep] == q_pids[i]).astype(np.float64)
        if not hits.any():
            continue
        found = hits.cumsum()
        cmc = np.minimum(found, 1.0)
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
        all_cmc.append(cmc[:max_rank])
        precision = found / np.arange(1, len(hits) + 1)
        all_ap.append(float((precision * hits).sum() / hits.sum()))
        hardest = int(np.flatnonzero(hits)[-1])
        all_inp.append(float(found[hardest] / (hardest + 1)))
    if not all_cmc:
        raise DataError("no query has a matching gallery image from another camera; cannot compute mAP")
    return RankMetrics(np.mean(all_cmc, axis=0), float(np.mean(all_ap)), float(np.mean(all_inp)), len(all_cmc))


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017) of a query-gallery distance matrix.

    The final distance is ``(1-λ)·Jaccard(k-reciprocal sets) + λ·original``, where the
    original distances are squared and each row is divided by its maximum, as in the paper's
    reference implementation.

    Args:
        q_g_dist, q_q_dist, g_g_dist: ``[Q, G]``, ``[Q, Q]``, ``[G, G]`` distances.
        k1, k2: neighbourhood sizes for the k-reciprocal sets and the query expansion.
        lambda_value: weight of the original distance.
    Returns:
        ``[Q, G]`` re-ranked distances (float32).
    """
    num_q, num_g = q_g_dist.shape
    if q_q_dist.shape != (num_q, num_q) or g_g_dist.shape != (num_g, num_g):
        raise DataError("re-ranking: distance matrices have inconsistent shapes")
    full = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]]).astype(np.float64)
    n = full.shape[0]
    full = np.square(full)
    full = (full / np.maximum(full.max(axis=1, keepdims=True), 1e-12)).astype(np.float32)
    k1 = max(1, min(k1, n - 1))
    k_half = max(1, int(np.around(k1 / 2.0)))
    initial_rank = np.argsort(full, axis=1, kind="stable")
    v = np.zeros((n, n), dtype=np.float32)

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[np.any(backward == i, axis=1)]

    for i in range(n):
        k_recip = reciprocal(i, k1)
        expansion = [k_recip]
        for cand in k_recip:
            cand_recip = reciprocal(int(cand), k_half)
            if len(np.intersect1d(cand_recip, k_recip)) > 2.0 / 3.0 * len(cand_recip):
                expansion.append(cand_recip)
        members = np.unique(np.concatenate(expansion))
        weight = np.exp(-full[i, members])
        v[i, members] = weight / weight.sum()
    if k2 > 1:
        v = np.stack([v[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    inv_index = [np.nonzero(v[:, j])[0] for j in range(n)]
    jaccard = np.zeros((num_q, n), dtype=np.float32)
    for i in range(num_q):
        overlap = np.zeros(n, dtype=np.float32)
        for j in np.nonzero(v[i])[0]:
            rows = inv_index[j]
            overlap[rows] += np.minimum(v[i, j], v[rows, j])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    final = jaccard * (1.0 - lambda_value) + full[:num_q] * lambda_value
    return final[:, num_q:]
