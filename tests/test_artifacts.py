"""The artifact table is the one owner of export file names; everything else reads it."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_artifact_table_names_roles_and_encodings() -> None:
    from reid_edge.artifacts import ARTIFACTS, INT8_CPU_ONNX, filename, role_for_encoding
    from reid_edge.calibration.quantize import ENCODINGS

    assert filename(INT8_CPU_ONNX) == "model.int8.cpu.onnx"
    assert len({a.filename for a in ARTIFACTS.values()}) == len(ARTIFACTS)
    for name, enc in ENCODINGS.items():  # quantization writes the files the table names
        assert filename(role_for_encoding(name)) == enc.filename
    with pytest.raises(KeyError):
        role_for_encoding("int4")


def test_plan_files_and_default_model_search_come_from_the_table() -> None:
    from reid_edge.artifacts import ARTIFACTS, DEFAULT_RUN_DIR, ENGINE, EXPORT_SUBDIR
    from reid_edge.deploy.capabilities import plan_export
    from reid_edge.pipeline.runner import DEFAULT_MODEL_SEARCH

    plan = plan_export(format="engine", int8=True, has_tensorrt=True)
    assert set(plan.files) == {a.filename for a in ARTIFACTS.values()} - {"model.fp16.onnx"}
    assert DEFAULT_MODEL_SEARCH[0] == str(Path(DEFAULT_RUN_DIR) / EXPORT_SUBDIR / ARTIFACTS[ENGINE].filename)


def test_export_options_list_calibration_flags() -> None:
    from reid_edge.deploy.exporter import ExportOptions

    assert ExportOptions().calibration_flags() == ()
    assert ExportOptions(calib=Path("c"), min_cosine=0.9).calibration_flags() == ("--calib", "--min-cosine")


def test_split_pool_keeps_the_rest_aside(tmp_path) -> None:
    from reid_edge.calibration.calib_set import split_pool

    pool = []
    for i in range(20):
        (tmp_path / f"{i}.jpg").write_bytes(b"x")
        pool.append(tmp_path / f"{i}.jpg")
    chosen, rest = split_pool(pool, 16, "test pool")
    assert len(chosen) == 16 and len(rest) == 4 and not set(chosen) & set(rest)
