"""Latency/throughput benchmarks of any artifact through the Backend protocol.

Each (model, batch) pair gets ``warmup`` untimed runs, then ``iterations`` timed runs of
``Backend.infer`` on a fixed random batch; the result is p50/p95 latency and throughput
(crops/s at the median latency).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from reid_edge.card import INPUT_NAME
from reid_edge.errors import ConfigError


@dataclass(frozen=True)
class BenchResult:
    """Timing of one model at one batch size (milliseconds per batch)."""

    model: str
    backend: str
    encoding: str
    device: str
    batch: int
    iterations: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    crops_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_batches(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``.

    Raises:
        ConfigError: empty, non-integer or non-positive values.
    """
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--batch expects comma-separated integers, got '{text}'") from None
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"--batch expects positive batch sizes, got '{text}'")
    return values


def latency_stats(seconds: Sequence[float], batch: int) -> tuple[float, float, float, float]:
    """``(p50_ms, p95_ms, mean_ms, crops_per_s)``; throughput uses the median latency."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    if ms.size == 0:
        raise ConfigError("no timed iterations")
    p50 = float(np.percentile(ms, 50))
    return p50, float(np.percentile(ms, 95)), float(ms.mean()), batch / (p50 / 1000.0)


def bench_backend(backend: Any, model_name: str, batches: Sequence[int], iterations: int = 20, warmup: int = 3,
                  seed: int = 0) -> list[BenchResult]:
    """Time ``backend.infer`` at each batch size.

    Raises:
        ConfigError: ``iterations < 1`` or ``warmup < 0``.
    """
    if iterations < 1 or warmup < 0:
        raise ConfigError("--iterations must be >= 1 and --warmup >= 0")
    card = backend.card
    rng = np.random.default_rng(seed)
    results = []
    for batch in batches:
        if backend.max_batch is not None and batch > backend.max_batch:
            raise ConfigError(f"{model_name}: batch {batch} exceeds the artifact's maximum {backend.max_batch}")
        x = rng.standard_normal((batch, 3, card.input_height, card.input_width)).astype(np.float32)
        feed = {INPUT_NAME: x}
        for _ in range(warmup):
            backend.infer(feed)
        times = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            backend.infer(feed)
            times.append(time.perf_counter() - t0)
        p50, p95, mean, tput = latency_stats(times, batch)
        results.append(BenchResult(model_name, backend.name, card.encoding, str(getattr(backend, "device", "?")),
                                   batch, iterations, p50, p95, mean, tput))
    return results


def render_results(results: Sequence[BenchResult], title: str = "reid-edge bench") -> Any:
    """A rich Table: one row per model and batch."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("model", "runtime", "batch", "p50 ms", "p95 ms", "crops/s"):
        table.add_column(col, justify="right" if col in ("batch", "p50 ms", "p95 ms", "crops/s") else "left")
    for r in results:
        table.add_row(r.model, f"{r.backend} {r.encoding} {r.device}", str(r.batch), f"{r.p50_ms:.2f}",
                      f"{r.p95_ms:.2f}", f"{r.crops_per_s:.1f}")
    return table
