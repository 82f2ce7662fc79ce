"""`reid-edge import` of foreign re-ID ONNX models, and the models shipped in the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid_edge.backends import load_backend
from reid_edge.card import INPUT_NAME, OUTPUT_GLOBAL, read_card
from reid_edge.cli import main
from reid_edge.errors import CheckpointError, ConfigError
from reid_edge.models import DEFAULT_MODEL, PACKAGED, model_names, resolve

INTEL = {"intel-0288": "person-reidentification-retail-0288.onnx",
         "intel-0277": "person-reidentification-retail-0277.onnx"}


def _crops(folder: Path, n: int = 6) -> list[np.ndarray]:
    import cv2

    paths = sorted(folder.glob("*.jpg"))[:n]
    return [cv2.imread(str(p)) for p in paths]


def _intel_reference(src: Path, crops: list[np.ndarray]) -> np.ndarray:
    """Intel's documented contract, written independently of reid_edge.preprocess: BGR 0-255, 256x128."""
    import cv2
    import onnxruntime as ort

    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    rows = []
    for crop in crops:  # one at a time: the converted file is checked at batch 1 only
        x = cv2.resize(crop, (128, 256), interpolation=cv2.INTER_LINEAR).astype(np.float32).transpose(2, 0, 1)[None]
        rows.append(sess.run(None, {sess.get_inputs()[0].name: x})[0][0])
    out = np.stack(rows).astype(np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("name", list(INTEL))
def test_import_intel_model_matches_the_original(name: str, shared_data: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_data / "models" / INTEL[name]
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    out = tmp_path / f"{name}.onnx"
    rc = main(["import", str(src), "--name", name, "--input-size", "256x128", "--channel-order", "bgr",
               "--normalize", "inside", "--license", "Apache-2.0", "--track-gate", "0.85",
               "--same-camera-gate", "0.8", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    card = read_card(out)
    assert (card.match_gate, card.track_gate, card.same_camera_gate) == (None, 0.85, 0.8)
    assert (card.backbone, card.input_height, card.input_width, card.channel_order) == (name, 256, 128, "BGR")
    assert (card.global_dim, card.num_stripes, card.has_stripes) == (256, 0, False)
    assert card.extra["license"] == "Apache-2.0" and card.extra["imported_from"] == src.name

    import onnx

    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_GLOBAL]
    assert not any(n.op_type == "Constant" for n in proto.graph.node)  # weights are initializers now

    crops = _crops(shared_data / "market1501_mini" / "query")
    backend = load_backend(out, device="cpu")
    emb = backend.embed(crops, batch_size=len(crops))  # a batch > 1: the batch dimension is dynamic
    assert emb.global_.shape == (len(crops), 256) and emb.stripes.shape == (len(crops), 0, 0)
    cosine = (emb.global_.astype(np.float64) * _intel_reference(src, crops)).sum(1)
    assert cosine.min() > 0.9999, cosine


def test_import_refuses_what_it_cannot_honour(shared_data: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_data / "models" / INTEL["intel-0288"]
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    bad = [
        (["--input-size", "384x128"], "contradicts"),
        (["--output", "nope"], "is not an output"),
        (["--normalize", "zscore"], "--normalize"),
        (["--channel-order", "rgba"], "channel order"),
        (["--mean", "0.5,0.5,0.5"], "both --mean and --std"),
        (["--track-gate", "2.5"], "track gate"),
        (["--same-camera-gate", "0"], "same-camera gate"),
    ]
    for flags, message in bad:
        assert main(["import", str(src), "--name", "x", "--out", str(tmp_path / "x.onnx"), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, (flags, err)
    not_onnx = tmp_path / "weights.onnx"
    not_onnx.write_bytes(b"\x00not a model")
    assert main(["import", str(not_onnx), "--name", "x", "--out", str(tmp_path / "y.onnx")]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert main(["import", str(src), "--name", "x", "--out", str(tmp_path / "z.onnx")]) == 0
    assert main(["import", str(src), "--name", "x", "--out", str(tmp_path / "z.onnx")]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "z.onnx"), "--name", "x", "--out", str(tmp_path / "w.onnx")]) == 2
    assert "already has a reid-edge model card" in capsys.readouterr().err


def test_packaged_models_resolve_and_record_their_provenance(shared_data: Path) -> None:
    assert resolve() == resolve("default") == PACKAGED[DEFAULT_MODEL].path
    assert set(model_names()) == {"default", *PACKAGED}
    for name, model in PACKAGED.items():
        card = read_card(resolve(name))
        assert card.backbone == name and not card.has_stripes
        assert "Apache-2.0" in card.extra["license"] and "Open Model Zoo" in card.extra["source"]
        assert (model.path.parent / "LICENSE-open_model_zoo.txt").is_file()
        src = shared_data / "models" / INTEL[name]
        if src.is_file():  # the shipped file was imported from exactly this converted source
            from reid_edge.card import sha256_file

            assert card.source_checkpoint_sha256 == sha256_file(src)
    notice = (PACKAGED[DEFAULT_MODEL].path.parent / "NOTICE.md").read_text()
    assert "person-reidentification-retail-0288" in notice and "Modified" in notice


def test_resolve_prefers_files_and_names_unknown_models(tmp_path: Path) -> None:
    local = tmp_path / "intel-0277"
    local.write_bytes(b"x")
    assert resolve(local) == local
    with pytest.raises(CheckpointError, match="intel-0288"):
        resolve("no-such-model")
    with pytest.raises(ConfigError):
        from reid_edge.deploy.import_onnx import parse_size

        parse_size("256by128")
