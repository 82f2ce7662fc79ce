"""Names and defaults that several layers share, in one torch-free module.

The CLI derives its choices and help-string defaults from here, so ``reid-edge --help`` imports
neither torch nor the training code; the training code, the model card and the evaluation read
the same tuples and numbers (a test checks the model registry against :data:`BACKBONES`).
"""

from __future__ import annotations

IMPORTED_BACKBONES: tuple[str, ...] = ("intel-0288", "intel-0277")
"""Packaged ONNX re-ID models that training can continue from (their own weights and head)."""

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "mobilenetv2", *IMPORTED_BACKBONES)
"""Backbones :func:`reid_edge.train.models.build_backbone` can build."""

DATA_FORMATS: tuple[str, ...] = ("market1501", "dukemtmc", "msmt17", "cuhk03", "folder", "unlabeled")
"""Dataset layouts the readers of :mod:`reid_edge.datasets` know (``auto`` picks one)."""

EVAL_DATA_FORMATS: tuple[str, ...] = tuple(f for f in DATA_FORMATS if f != "unlabeled")
"""Layouts with identities, so a query/gallery split can exist."""

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DISTANCES: tuple[str, ...] = ("combined", "global")
"""``combined``: the paper's test distance (global + stripes + same-camera term); ``global``: deployed."""

DEFAULT_LAMBDA_C = 0.05
"""The paper's same-camera penalty of the selection and the combined distance (Pang et al.)."""

DEFAULT_MAX_DISTANCE = 1.0
"""The cross-camera match gate of the pipeline (combined distance, 0..2)."""

DEFAULT_DETECTOR = "yolox"
"""The person detector of every command that detects: the packaged YOLOX-Nano."""

DETECTOR_CHOICES: tuple[str, ...] = ("yolox", "yolox:PATH.onnx", "yolox@SIZE", "yolo:PATH.onnx", "motion", "hog",
                                     "hog+motion")
"""``--detector`` spellings (:func:`reid_edge.pipeline.detectors.make_detector`)."""
