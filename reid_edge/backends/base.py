"""One Backend protocol, three implementations (STYLE rule 1).

Model: Polygraphy's runner, whose public ``infer`` validates and then calls ``infer_impl``.
Here :meth:`Backend.infer` checks input name, dtype and shape against the model card, then
calls the implementation's :meth:`Backend._infer`. The pipeline, evaluation, the calibration
report and the benchmarks all go through this one protocol.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..card import INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard
from ..errors import BackendError
from ..preprocess import preprocess_for_card


@dataclass(frozen=True)
class Embeddings:
    """L2-normalized embeddings of a batch: ``global_`` ``[B, D]``, ``stripes`` ``[B, S, d]``."""

    global_: np.ndarray
    stripes: np.ndarray

    def __len__(self) -> int:
        return int(self.global_.shape[0])


class Backend(ABC):
    """An inference runtime for a re-identification artifact.

    Subclasses set :attr:`card` and :attr:`max_batch` (None: unbounded) and implement
    :meth:`_infer`. A backend is a context manager (Polygraphy's runners are too): ``with
    load_backend(path) as backend: ...`` closes its session on the way out.
    """

    name: str = "backend"
    card: ModelCard
    max_batch: int | None = None

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a validated batch.

        Args:
            feed: ``{"images": float32 [B, 3, H, W]}`` preprocessed as the card says.
        Returns:
            ``{"embedding": [B, D], "stripes": [B, S, d]}`` as float32; ``stripes`` is ``[B, 0, 0]``
            for a global-only model (card ``num_stripes == 0``).
        Raises:
            BackendError: wrong input name, dtype, rank or shape.
        """
        if set(feed) != {INPUT_NAME}:
            raise BackendError(f"{self.name}: expected exactly the input '{INPUT_NAME}', got {sorted(feed)}")
        x = feed[INPUT_NAME]
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise BackendError(f"{self.name}: input '{INPUT_NAME}' must be a float32 numpy array")
        want = (3, self.card.input_height, self.card.input_width)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise BackendError(
                f"{self.name}: input shape {tuple(x.shape)} does not match [B, {want[0]}, {want[1]}, {want[2]}]"
            )
        if x.shape[0] == 0:
            raise BackendError(f"{self.name}: empty batch")
        if self.max_batch is not None and x.shape[0] > self.max_batch:
            raise BackendError(f"{self.name}: batch {x.shape[0]} exceeds the artifact's maximum {self.max_batch}")
        out = self._infer(np.ascontiguousarray(x))
        stripes = out.get(OUTPUT_STRIPES)
        if stripes is None:
            if self.card.has_stripes:
                raise BackendError(f"{self.name}: the model returned no '{OUTPUT_STRIPES}' output")
            stripes = np.zeros((x.shape[0], 0, 0), np.float32)  # global-only model
        return {OUTPUT_GLOBAL: np.asarray(out[OUTPUT_GLOBAL], dtype=np.float32),
                OUTPUT_STRIPES: np.asarray(stripes, dtype=np.float32)}

    @abstractmethod
    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``images`` (already validated) and return the outputs (no stripes for a global-only model)."""

    def embed(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> Embeddings:
        """Preprocess BGR uint8 crops with the card's settings and embed them in batches."""
        if self.max_batch is not None:
            batch_size = min(batch_size, self.max_batch)
        g_parts: list[np.ndarray] = []
        s_parts: list[np.ndarray] = []
        for start in range(0, len(crops), batch_size):
            x = preprocess_for_card(crops[start:start + batch_size], self.card)
            out = self.infer({INPUT_NAME: x})
            g_parts.append(out[OUTPUT_GLOBAL])
            s_parts.append(out[OUTPUT_STRIPES])
        if not g_parts:
            c = self.card
            return Embeddings(
                np.zeros((0, c.global_dim), np.float32), np.zeros((0, c.num_stripes, c.stripe_dim), np.float32)
            )
        return Embeddings(np.concatenate(g_parts), np.concatenate(s_parts))

    def embed_array(self, images: np.ndarray, batch_size: int = 32) -> Embeddings:
        """Embed an already preprocessed float32 NCHW array in batches."""
        if self.max_batch is not None:
            batch_size = min(batch_size, self.max_batch)
        outs = [self.infer({INPUT_NAME: images[i:i + batch_size]}) for i in range(0, len(images), batch_size)]
        return Embeddings(
            np.concatenate([o[OUTPUT_GLOBAL] for o in outs]), np.concatenate([o[OUTPUT_STRIPES] for o in outs])
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release runtime resources (sessions, device buffers); the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
