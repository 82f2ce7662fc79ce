"""Embed every DukeMTMC-reID crop once with a model and cache the result (used by duke_association).

Two kinds of model: a reid-edge artifact (model card: the project's Backend and preprocessing),
or a bare ONNX person re-id model without a card, such as Intel's
person-reidentification-retail-0288 (input BGR 0-255 ``[N,3,256,128]``, output ``[N,256]``):
that one is fed exactly as its card states, and its output L2-normalised (cosine).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

SPLITS = ("bounding_box_train", "bounding_box_test", "query")


def list_crops(data: Path) -> list[Path]:
    """Every identity crop of the three splits (distractors ``-1``/``0000`` left out), sorted by name."""
    files: dict[str, Path] = {}
    for split in SPLITS:
        d = data / split
        if not d.is_dir():
            continue
        for p in d.glob("*.jpg"):
            pid = p.name.split("_")[0]
            if pid.startswith("-") or pid == "0000":
                continue
            files.setdefault(p.name, p)  # query and test hold the same file names for some crops
    return [files[k] for k in sorted(files)]


def cache_path(cache_dir: Path, model: Path) -> Path:
    st = model.stat()
    key = hashlib.sha1(f"{model.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_dir / f"duke_{model.stem}_{key}.npz"


def _bare_onnx(model: Path, threads: int):  # type: ignore[no-untyped-def]
    import cv2
    import onnxruntime as ort

    from reid_edge.preprocess import read_bgr

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    h, w = int(inp.shape[2]), int(inp.shape[3])

    def embed(paths: list[Path]) -> np.ndarray:
        batch = np.stack([cv2.resize(read_bgr(p), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
                          for p in paths]).astype(np.float32)
        out = sess.run(None, {inp.name: batch})[0].reshape(len(paths), -1)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    return embed


def _card_backend(model: Path):  # type: ignore[no-untyped-def]
    from reid_edge.backends import load_backend
    from reid_edge.preprocess import read_bgr

    backend = load_backend(model, device="cpu")

    def embed(paths: list[Path]) -> np.ndarray:
        emb = backend.embed([read_bgr(p) for p in paths], batch_size=len(paths))
        return np.asarray(emb.global_, dtype=np.float32)

    return embed


def resolve_model(model: str | Path) -> Path:
    """``default``, a packaged model's name (``reid_edge.models``) or a file."""
    from reid_edge.models import resolve

    return Path(resolve(str(model)))


def has_card(model: Path) -> bool:
    if model.suffix == ".pt":
        return True
    import onnx

    m = onnx.load(str(model), load_external_data=False)
    from reid_edge.card import CARD_KEY

    return any(p.key == CARD_KEY for p in m.metadata_props)


def embed_all(data: Path, model: Path, cache_dir: Path, batch: int = 64, threads: int = 2,
              log: bool = True) -> tuple[list[str], np.ndarray]:
    """``(file names, [N, D] unit embeddings)``, from the cache when it is there."""
    model = resolve_model(model)
    files = list_crops(data)
    names = [p.name for p in files]
    out = cache_path(cache_dir, model)
    if out.is_file():
        z = np.load(out)
        if list(z["names"]) == names:
            return names, z["feats"]
    fn = _card_backend(model) if has_card(model) else _bare_onnx(model, threads)
    feats = []
    for i in range(0, len(files), batch):
        feats.append(fn(files[i:i + batch]))
        if log and (i // batch) % 50 == 0:
            print(f"embedded {i + len(feats[-1])}/{len(files)}", flush=True)
    arr = np.concatenate(feats).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, names=np.array(names), feats=arr)
    tmp.replace(out)
    return names, arr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True, help="default, a packaged model's name, or a file")
    ap.add_argument("--cache", type=Path, default=Path("/work/scratch/a15"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    names, feats = embed_all(a.data, a.model, a.cache, threads=a.threads)
    print(f"{len(names)} crops -> {feats.shape} in {cache_path(a.cache, resolve_model(a.model))}")


if __name__ == "__main__":
    main()
