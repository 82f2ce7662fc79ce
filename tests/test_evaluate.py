"""Evaluation: Market-protocol CMC/mAP, re-ranking, feature extraction and ``reid-edge eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reid_edge.errors import DataError
from reid_edge.evaluation import camera_centre, camera_means, evaluate_features
from reid_edge.metrics import evaluate_rank, re_ranking

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_evaluate_rank_hand_computed() -> None:
    # gallery:            g0      g1      g2      g3 (same pid+cam as q0)  g4 (junk)
    g_pids = np.array([1, 2, 1, 1, -1])
    g_cams = np.array([2, 2, 2, 1, 2])
    q_pids = np.array([1, 2, 9])
    q_cams = np.array([1, 3, 1])
    dist = np.array([
        [0.2, 0.1, 0.3, 0.05, 0.0],  # valid order g1(x) g0(v) g2(v): AP = (1/2 + 2/3) / 2 = 7/12
        [0.1, 0.5, 0.2, 0.3, 0.0],   # valid order g0 g2 g3 g1(v): AP = 1/4
        [0.1, 0.2, 0.3, 0.4, 0.0],   # pid 9 has no match: skipped
    ])
    m = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    assert m.num_valid == 2
    assert m.mAP == pytest.approx((7 / 12 + 1 / 4) / 2)
    # INP: matches found / rank of the hardest match: q0 2 of 3, q1 1 of 4
    assert m.mINP == pytest.approx((2 / 3 + 1 / 4) / 2)
    np.testing.assert_allclose(m.cmc, [0.0, 0.5, 0.5, 1.0])


def test_evaluate_rank_distractor_counts_as_wrong_and_short_gallery() -> None:
    dist = np.array([[0.1, 0.15, 0.2, 0.3]])
    m = evaluate_rank(dist, np.array([1]), np.array([2, 0, 1, 1]), np.array([1]), np.array([2, 1, 2, 2]),
                      max_rank=50)
    assert m.mAP == pytest.approx((1 / 3 + 2 / 4) / 2) and m.mINP == pytest.approx(2 / 4)
    assert m.cmc.shape == (4,) and m.cmc.tolist() == [0.0, 0.0, 1.0, 1.0]
    perfect = evaluate_rank(np.array([[0.0, 1.0]]), np.array([1]), np.array([1, 2]), np.array([1]), np.array([2, 2]))
    assert perfect.mAP == 1.0 and perfect.mINP == 1.0 and perfect.cmc[0] == 1.0


def test_evaluate_rank_errors() -> None:
    with pytest.raises(DataError, match="no query"):
        evaluate_rank(np.zeros((1, 2)), np.array([1]), np.array([1, 2]), np.array([1]), np.array([1, 1]))
    with pytest.raises(DataError, match="does not match"):
        evaluate_rank(np.zeros((2, 2)), np.array([1]), np.array([1, 2]), np.array([1]), np.array([1, 1]))


def _clusters(seed: int, ids: int = 12, per_id: int = 6, dim: int = 8, noise: float = 0.55):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    g = np.concatenate([c + noise * rng.normal(size=(per_id, dim)) for c in centers])
    q = centers + noise * rng.normal(size=(ids, dim))
    g_pids = np.repeat(np.arange(ids), per_id)
    return q, g, np.arange(ids), g_pids


def _d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))


def test_re_ranking_shape_and_gallery_permutation() -> None:
    q, g, _, _ = _clusters(0)
    out = re_ranking(_d(q, g), _d(q, q), _d(g, g))
    assert out.shape == (len(q), len(g)) and np.isfinite(out).all() and (out >= 0).all()
    perm = np.random.default_rng(1).permutation(len(g))
    gp = g[perm]
    out_p = re_ranking(_d(q, gp), _d(q, q), _d(gp, gp))
    np.testing.assert_allclose(out_p, out[:, perm], rtol=1e-5, atol=1e-6)


def test_re_ranking_keeps_trivial_order() -> None:
    # far-apart, tight clusters: every query's true matches stay first
    q, g, q_pids, g_pids = _clusters(2, noise=0.01)
    out = re_ranking(_d(q, g), _d(q, q), _d(g, g), k1=5, k2=3)
    top = np.argsort(out, axis=1)[:, :6]
    assert (g_pids[top] == q_pids[:, None]).all()
    assert all(set(t) == set(p) for t, p in zip(top, np.argsort(_d(q, g), axis=1)[:, :6]))
    # lambda = 1 keeps only the (monotonically transformed) original distance: the plain order
    only_original = re_ranking(_d(q, g), _d(q, q), _d(g, g), lambda_value=1.0)
    assert np.array_equal(np.argsort(only_original, 1, kind="stable"), np.argsort(_d(q, g), 1, kind="stable"))


def test_re_ranking_improves_noisy_clusters() -> None:
    q, g, q_pids, g_pids = _clusters(3)
    cams_q, cams_g = np.zeros(len(q)), np.ones(len(g))
    ap_plain = evaluate_rank(_d(q, g), q_pids, g_pids, cams_q, cams_g).mAP
    ap_rr = evaluate_rank(re_ranking(_d(q, g), _d(q, q), _d(g, g), k1=6, k2=3), q_pids, g_pids, cams_q, cams_g).mAP
    assert ap_rr > ap_plain + 0.02, (ap_plain, ap_rr)


def test_evaluate_features_combined_vs_global() -> None:
    from reid_edge.train.data.datasets import Sample

    rng = np.random.default_rng(0)
    g_feat = rng.normal(size=(4, 8)).astype(np.float32)
    g_feat /= np.linalg.norm(g_feat, axis=1, keepdims=True)
    stripes = np.repeat(g_feat[:, None, :2], 2, axis=1)
    query = [Sample("q", 1, 1, 0)]
    gallery = [Sample(f"g{i}", p, c, i) for i, (p, c) in enumerate([(1, 2), (2, 2), (3, 2), (4, 2)])]
    qf = (g_feat[:1], stripes[:1])
    res = evaluate_features(qf, (g_feat, stripes), query, gallery, distance="global")
    assert res.mAP == 1.0 and res.to_dict()["rank1"] == 1.0
    res_c = evaluate_features(qf, (g_feat, stripes), query, gallery, distance="combined", lambda_c=0.05)
    assert res_c.mAP == 1.0 and res_c.distance == "combined"
    with pytest.raises(DataError, match="unknown distance"):
        evaluate_features(qf, (g_feat, stripes), query, gallery, distance="cosine")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from reid_edge.train.checkpoint import save_checkpoint
    from reid_edge.train.evaluate import model_card_for
    from reid_edge.train.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", num_stripes=4, embed_dim=64, last_stride=1).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model=model, method=None, optimizer=None, epoch=0, config=None, dataset_fingerprint="x",
                    rng_state=None, calibration_images=[], card=model_card_for(model, 64, 32, 0.5),
                    metrics={}, best_metric=None)
    return path


def test_camera_centring_removes_a_per_camera_offset() -> None:
    # two people (x and y axes) seen by two cameras; camera 2 adds a large z offset, so plainly the
    # nearest neighbour of a camera-2 view is the other person's camera-2 view, after centring it is
    # the same person's camera-1 view
    e = np.eye(3)
    feats = np.stack([e[0], e[1], e[0] + 2 * e[2], e[1] + 2 * e[2]])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    cams = np.array([1, 1, 2, 2])
    means = camera_means(feats, cams)
    np.testing.assert_allclose(means[1], [0.5, 0.5, 0.0])
    assert np.argmax(feats[2] @ feats[[0, 1, 3]].T) == 2  # the other person, same camera
    out = camera_centre(feats, cams, means)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)
    assert np.argmax(out[2] @ out[[0, 1, 3]].T) == 0  # the same person, other camera
    # a camera without training crops falls back to the mean of the means
    want = feats[0] - (means[1] + means[2]) / 2
    np.testing.assert_allclose(camera_centre(feats[:1], np.array([7]), means)[0], want / np.linalg.norm(want))


def _offset_site(root: Path) -> None:
    """Market-layout crops whose pixel values say who (blue) and which camera (green): 4 people x 3
    cameras; query/ holds camera 1's view of each person, the gallery cameras 2 and 3, the training
    crops all three."""
    import cv2

    for split, cams in (("query", (1,)), ("bounding_box_test", (2, 3)), ("bounding_box_train", (1, 2, 3))):
        (root / split).mkdir(parents=True)
        for pid in range(1, 5):
            for cam in cams:
                img = np.zeros((8, 4, 3), np.uint8)
                img[..., 0], img[..., 1] = 50 * pid, 60 * cam
                cv2.imwrite(str(root / split / f"{pid:04d}_c{cam}s1_000001_00.png"), img)


class _OffsetBackend:
    """Embeds a crop as one-hot(person) plus a large offset of its camera: cameras 1 and 3 share
    theirs (alike light), camera 2 has another. Plainly, a camera-1 query is nearer every person
    seen by camera 3 than its own person seen by camera 2."""

    class card:  # noqa: N801 - stands in for a ModelCard
        lambda_g, lambda_c, global_dim, num_stripes, stripe_dim = 1.0, 0.0, 6, 0, 1

    def embed(self, crops: list[np.ndarray], batch_size: int = 32) -> object:
        from reid_edge.backends.base import Embeddings

        g = np.zeros((len(crops), 6), np.float32)
        for i, c in enumerate(crops):
            g[i, round(c[0, 0, 0] / 50) - 1] = 1.0
            g[i, 5 if round(c[0, 0, 1] / 60) == 2 else 4] = 3.0
        return Embeddings(g / np.linalg.norm(g, axis=1, keepdims=True), np.zeros((len(crops), 0, 1), np.float32))


def test_evaluate_camera_centre_finds_people_across_a_camera_offset(tmp_path: Path) -> None:
    from reid_edge.datasets import read_market_layout
    from reid_edge.evaluation import evaluate, read_test_split

    _offset_site(tmp_path / "site")
    _, query, gallery = read_test_split(tmp_path / "site")
    train = read_market_layout(tmp_path / "site").train
    backend = _OffsetBackend()
    plain = evaluate(backend, query, gallery, distance="global")  # type: ignore[arg-type]
    centred = evaluate(backend, query, gallery, distance="global", centre_on=train)  # type: ignore[arg-type]
    # plainly: own person in camera 3, then the 3 others in camera 3, then own person in camera 2
    assert plain.rank1 == 1.0 and plain.mAP == pytest.approx((1 + 2 / 5) / 2)
    # centred: both views of the own person first
    assert centred.camera_centre and not plain.camera_centre
    assert centred.mAP == 1.0


def test_eval_cli_camera_centre(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from reid_edge.cli import main
    from reid_edge.synth.crops import generate_crops

    data = tmp_path / "market"
    generate_crops(data, ids=6, cameras=2, seed=2, height=32, width=16, per_camera=2)
    out = tmp_path / "m.json"
    assert main(["eval", "--data", str(data), "--json", str(out), "--device", "cpu", "--camera-centre"]) == 0
    assert "camera-centred" in capsys.readouterr().out
    assert json.loads(out.read_text())["camera_centre"] is True
    shutil.rmtree(data / "bounding_box_train")
    assert main(["eval", "--data", str(data), "--device", "cpu", "--camera-centre"]) == 2
    err = capsys.readouterr().err
    assert "has none" in err and len(err.strip().splitlines()) == 1


def test_extract_features_model_equals_checkpoint_backend(tiny_checkpoint: Path, market_mini: Path) -> None:
    from reid_edge.backends import load_backend
    from reid_edge.train.checkpoint import load_model
    from reid_edge.train.data.datasets import read_dataset
    from reid_edge.train.evaluate import extract_features

    samples = read_dataset(market_mini).query[:5]
    model, card, _ = load_model(tiny_checkpoint)
    g1, s1 = extract_features(model, samples, batch_size=2, card=card)
    backend = load_backend(tiny_checkpoint, device="cpu")
    g2, s2 = extract_features(backend, samples, batch_size=4)
    assert g1.shape == (5, 64) and s1.shape == (5, 4, 16)
    np.testing.assert_allclose(g1, g2, atol=1e-5)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(g1, axis=1), 1.0, atol=1e-5)


def test_eval_cli_on_market_mini(tiny_checkpoint: Path, market_mini: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.cli import main

    out_json, png = tmp_path / "m.json", tmp_path / "cmc.png"
    rc = main(["eval", "--checkpoint", str(tiny_checkpoint), "--data", str(market_mini), "--json", str(out_json),
               "--plot", str(png), "--device", "cpu", "--batch-size", "16"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "mAP" in text and "rank-1" in text
    summary = json.loads(out_json.read_text())
    for key in ("mAP", "rank1", "rank5", "rank10"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["rank1"] <= summary["rank5"] <= summary["rank10"]
    assert summary["num_query"] == 32 and summary["num_gallery"] == 32 and summary["distance"] == "combined"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc = main(["eval", "--checkpoint", str(tiny_checkpoint), "--data", str(market_mini), "--json", str(out_json),
               "--distance", "global", "--rerank", "--device", "cpu"])
    assert rc == 0
    assert json.loads(out_json.read_text())["distance"] == "global"


def test_eval_cli_errors(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.cli import main

    (tmp_path / "u" / "cam1").mkdir(parents=True)
    import cv2

    cv2.imwrite(str(tmp_path / "u" / "cam1" / "a.jpg"), np.zeros((8, 4, 3), np.uint8))
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "u")]) == 2
    assert "no query/gallery" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(tmp_path / "u")]) == 2
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "u"),
                 "--distance", "cosine"]) == 2


def test_eval_needs_only_query_and_gallery_and_never_switches_protocol(market_mini: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The packaged default model on query/ + bounding_box_test/ only; a split-less folder is an error."""
    import shutil

    from reid_edge.cli import main

    test_only = tmp_path / "market_test_only"
    for sub in ("query", "bounding_box_test"):
        shutil.copytree(market_mini / sub, test_only / sub)
    out_json = tmp_path / "m.json"
    rc = main(["eval", "--data", str(test_only), "--json", str(out_json), "--device", "cpu"])  # no --model
    text = capsys.readouterr().out
    assert rc == 0, text
    summary = json.loads(out_json.read_text())
    assert summary["protocol"] == "market1501" and summary["backbone"] == "intel-0288"
    assert (summary["num_query"], summary["num_gallery"]) == (32, 32)  # not 64 crops all against all
    assert 0.0 < summary["mINP"] <= summary["mAP"] + 1e-9 <= 1.0 + 1e-9 and "mINP" in text
    assert summary["rank1"] > 0.8  # 0288 on real Market crops (measured 93 %); chance is ~6 %

    flat = tmp_path / "flat"
    shutil.copytree(market_mini / "query", flat)
    assert main(["eval", "--data", str(flat), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no query/gallery split" in err and "--format folder" in err
    assert main(["eval", "--data", str(flat), "--format", "folder", "--json", str(out_json), "--device", "cpu"]) == 0
    assert json.loads(out_json.read_text())["protocol"].startswith("folder")
