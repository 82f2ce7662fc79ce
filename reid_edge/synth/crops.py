"""Synthetic person crops in the Market-1501 layout.

``bounding_box_train/`` holds the training identities, ``bounding_box_test/`` (gallery) and
``query/`` the disjoint test identities. File names follow Market-1501:
``PPPP_cCsS_FFFFFF_BB.jpg`` (pid, 1-based camera, sequence 1, frame, box). Gallery distractors
(junk detections) have pid ``0000``. Every identity is seen by at least two cameras; each test
query is one image per (identity, camera) for a subset of that identity's cameras, and the other
images of test identities form the gallery.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_json, prepare_out_dir
from .camera import check_positive, make_cameras
from .people import identity_for
from .render import render_distractor, render_person, sample_view

SPLITS = ("bounding_box_train", "bounding_box_test", "query")
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CropStats:
    """What :func:`generate_crops` wrote."""

    out: str
    ids: int
    cameras: int
    seed: int
    domain: int
    height: int
    width: int
    train_ids: int
    test_ids: int
    train_images: int
    query_images: int
    gallery_images: int
    distractor_images: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    split: str
    pid: int  # 0 = distractor
    cam: int  # 1-based
    k: int  # image index within (pid, cam)


def plan_crops(
    ids: int, cameras: int, seed: int, per_camera: int = 4, distractors: int | None = None
) -> list[_Item]:
    """Which images to render: identities split train/test, cameras per identity, query/gallery.

    Pure and deterministic; :func:`generate_crops` renders the plan.
    """
    rng = np.random.default_rng([seed, 11])
    order = rng.permutation(np.arange(1, ids + 1))
    n_train = ids // 2
    train = set(int(p) for p in order[:n_train])
    items: list[_Item] = []
    n_gallery = 0
    for pid in range(1, ids + 1):
        prng = np.random.default_rng([seed, 12, pid])
        n_cams = int(prng.integers(2, cameras + 1))
        cams = sorted(int(c) + 1 for c in prng.choice(cameras, size=n_cams, replace=False))
        counts = {c: max(1, per_camera + int(prng.integers(-1, 2))) if per_camera > 1 else 1 for c in cams}
        if pid in train:
            items += [_Item("bounding_box_train", pid, c, k) for c in cams for k in range(counts[c])]
            continue
        # Query cameras: about half of the identity's cameras, and never all of them when some camera
        # holds a single image, so every query keeps a true match in another camera of the gallery.
        n_q = max(1, n_cams // 2)
        q_cams = set(int(c) for c in prng.choice(cams, size=n_q, replace=False))
        for c in cams:
            for k in range(counts[c]):
                split = "query" if (c in q_cams and k == 0) else "bounding_box_test"
                n_gallery += split == "bounding_box_test"
                items.append(_Item(split, pid, c, k))
    n_junk = max(1, round(0.05 * n_gallery)) if distractors is None else distractors
    for j in range(n_junk):
        items.append(_Item("bounding_box_test", 0, int(rng.integers(cameras)) + 1, j))
    return items


def generate_crops(
    out: str | os.PathLike[str],
    ids: int,
    cameras: int,
    seed: int = 0,
    *,
    height: int = 128,
    width: int = 64,
    per_camera: int = 4,
    domain: int = 0,
    distractors: int | None = None,
    overwrite: bool = False,
) -> CropStats:
    """Render a Market-1501-layout dataset of synthetic pedestrians into ``out``.

    Args:
        out: output folder (created; must be empty unless ``overwrite``).
        ids: number of identities (>= 2); half train, half test.
        cameras: number of cameras (>= 2); each identity is seen by 2..``cameras`` of them.
        seed: population and image randomness (same seed -> identical files).
        height, width: crop size.
        per_camera: images per (identity, camera), +-1.
        domain: site style (0 = "A", 1 = "B", ...): camera colours, lighting, backgrounds.
        distractors: number of pid-0000 junk gallery images (default about 5% of the gallery).
        overwrite: write into a non-empty ``out`` (its split folders are replaced).

    Raises:
        ConfigError: invalid sizes or counts.
        ReidEdgeError: ``out`` is not empty (without ``overwrite``) or not writable.
    """
    check_positive("--ids", ids, 2)
    check_positive("--cameras", cameras, 2)
    check_positive("--per-camera", per_camera, 1)
    check_positive("--height", height, 32)
    check_positive("--width", width, 16)
    if cameras > 99:
        raise ConfigError(f"--cameras must be <= 99 for Market-1501 file names, got {cameras}")
    if ids > 9999:
        raise ConfigError(f"--ids must be <= 9999 for Market-1501 file names, got {ids}")
    if distractors is not None:
        check_positive("distractors", distractors, 0)
    root = prepare_out_dir(out, overwrite)
    cams = make_cameras(cameras, domain)
    items = plan_crops(ids, cameras, seed, per_camera, distractors)
    # Frame numbers grow per camera in plan order, like detections along a camera's timeline.
    frame_rng = np.random.default_rng([seed, 13])
    frames = {c: 0 for c in range(1, cameras + 1)}
    # Render into a staging folder inside ``out`` and move the finished splits in: a crash leaves
    # no half-written split behind.
    staging = Path(tempfile.mkdtemp(prefix=".synth-staging-", dir=root))
    counts = {s: 0 for s in SPLITS}
    n_junk = 0
    try:
        for split in SPLITS:
            (staging / split).mkdir()
        for item in items:
            cam = cams[item.cam - 1]
            frames[item.cam] += int(frame_rng.integers(1, 120))
            if item.pid == 0:
                rng = np.random.default_rng([seed, 14, item.cam, item.k])
                img = render_distractor(cam, rng, height, width)
                n_junk += 1
            else:
                rng = np.random.default_rng([seed, 15, item.pid, item.cam, item.k])
                img = render_person(
                    identity_for(seed, item.pid), cam, sample_view(cam, rng), rng, height, width
                )
            name = f"{item.pid:04d}_c{item.cam}s1_{frames[item.cam]:06d}_00.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR image
                raise RuntimeError("JPEG encoding failed")
            (staging / item.split / name).write_bytes(buf.tobytes())
            counts[item.split] += 1
        for split in SPLITS:
            target = root / split
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging / split, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_train = ids // 2
    stats = CropStats(
        out=str(root),
        ids=ids,
        cameras=cameras,
        seed=seed,
        domain=domain,
        height=height,
        width=width,
        train_ids=n_train,
        test_ids=ids - n_train,
        train_images=counts["bounding_box_train"],
        query_images=counts["query"],
        gallery_images=counts["bounding_box_test"],
        distractor_images=n_junk,
    )
    # The folder itself stays out of synth.json so that the same seed gives identical bytes anywhere.
    meta = {k: v for k, v in stats.to_dict().items() if k != "out"}
    atomic_write_json(
        root / "synth.json", {"kind": "crops", **meta, "camera_models": [c.to_dict() for c in cams]}
    )
    return stats
