"""The Backend protocol validates before it runs, and the shared preprocessing is exact."""

from __future__ import annotations

import numpy as np
import pytest

from reid_edge.backends import Backend, detect_format
from reid_edge.card import ModelCard
from reid_edge.errors import BackendError, CheckpointError, DataError
from reid_edge.preprocess import preprocess_crops, read_bgr


class _MeanBackend(Backend):
    """Embeds a crop as its per-row mean colour: deterministic and easy to check."""

    name = "mean"

    def __init__(self) -> None:
        self.card = ModelCard(backbone="fake", input_height=8, input_width=4, global_dim=3, num_stripes=2, stripe_dim=3)
        self.calls: list[int] = []

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append(len(images))
        g = images.mean(axis=(2, 3))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        s = images.reshape(len(images), 3, 2, -1).mean(-1).transpose(0, 2, 1)
        s /= np.linalg.norm(s, axis=2, keepdims=True)
        return {"embedding": g, "stripes": s}


def test_infer_validates_name_dtype_and_shape() -> None:
    b = _MeanBackend()
    good = np.ones((2, 3, 8, 4), np.float32)
    assert b.infer({"images": good})["embedding"].shape == (2, 3)
    with pytest.raises(BackendError, match="input 'images'"):
        b.infer({"x": good})
    with pytest.raises(BackendError, match="float32"):
        b.infer({"images": good.astype(np.float64)})
    with pytest.raises(BackendError, match="does not match"):
        b.infer({"images": np.ones((2, 3, 4, 8), np.float32)})
    with pytest.raises(BackendError, match="empty"):
        b.infer({"images": np.ones((0, 3, 8, 4), np.float32)})
    b.max_batch = 1
    with pytest.raises(BackendError, match="exceeds"):
        b.infer({"images": good})


def test_embed_batches_and_preprocesses_like_the_card() -> None:
    b = _MeanBackend()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (20 + i, 10 + i, 3), dtype=np.uint8) for i in range(5)]
    emb = b.embed(crops, batch_size=2)
    assert b.calls == [2, 2, 1]
    assert emb.global_.shape == (5, 3) and emb.stripes.shape == (5, 2, 3)
    direct = b.infer({"images": preprocess_crops(crops, 8, 4)})
    np.testing.assert_allclose(emb.global_, direct["embedding"], rtol=1e-6)


def test_preprocess_crops_matches_hand_computation() -> None:
    crop = np.zeros((2, 2, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    x = preprocess_crops([crop], height=2, width=2)
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    # RGB order: channel 2 is blue; (1 - 0.406) / 0.225 and (0 - 0.485) / 0.229
    np.testing.assert_allclose(x[0, 2], (1 - 0.406) / 0.225, rtol=1e-5)
    np.testing.assert_allclose(x[0, 0], (0 - 0.485) / 0.229, rtol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_crops([np.zeros((4, 4), np.uint8)])


def test_read_bgr_reads_images_and_names_what_it_cannot_read(tmp_path) -> None:
    import cv2

    img = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    np.testing.assert_array_equal(read_bgr(tmp_path / "a.png"), img)
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"cannot read gallery crop .*b\.jpg \(missing, not an image, or corrupt\)"):
        read_bgr(tmp_path / "b.jpg", "gallery crop")
    with pytest.raises(DataError, match="cannot read image .*absent.png"):
        read_bgr(str(tmp_path / "absent.png"))


def test_detect_format_reads_content_not_names(tmp_path) -> None:
    onnx_like = tmp_path / "model.pt"
    onnx_like.write_bytes(b"\x08\x07\x12\x04test")
    assert detect_format(onnx_like) == "onnx"
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a reid-edge"):
        detect_format(junk)
    with pytest.raises(CheckpointError, match="does not exist"):
        detect_format(tmp_path / "missing.onnx")
