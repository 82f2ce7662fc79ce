"""Dataset readers live in the torch-free runtime (:mod:`reid_edge.datasets`): evaluation of
deployed models reads the same query/gallery splits as training. Re-exported here for the
training code."""

from reid_edge.datasets import (  # noqa: F401
    IMAGE_EXTS,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    ReidData,
    Sample,
    check_readable,
    dataset_fingerprint,
    detect_format,
    evaluation_split,
    has_market_test_split,
    msmt17_camera,
    read_cuhk03,
    read_dataset,
    read_folder,
    read_manifest,
    read_market_layout,
    read_msmt17,
    read_unlabeled,
    split_calibration,
)
