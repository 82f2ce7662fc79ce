"""Dataset readers: folders of person crops -> lists of :class:`Sample` records.

Supported layouts (``format``):

- ``market1501``: ``bounding_box_train/``, ``bounding_box_test/``, ``query/``; names
  ``PPPP_cCsS_FFFFFF_NN.jpg``. pid -1 (junk) is dropped, pid 0 (distractors) stays in the gallery.
- ``dukemtmc``: DukeMTMC-reID, same folders, names ``PPPP_cC_fFFFFFFF.jpg``.
- ``msmt17``: ``list_train.txt`` (+ ``list_val.txt``), ``list_query.txt``, ``list_gallery.txt``
  with lines ``relative/path.jpg label``; images under ``train/`` and ``test/`` (MSMT17_V1) or
  ``mask_train_v2/``/``mask_test_v2/`` (V2). The camera is the third ``_`` field of the
  file name, 1-based (``0000_000_01_0303morning_0015_0.jpg`` is camera 1).
- ``cuhk03``: CUHK03-NP, ``detected/`` or ``labeled/``, each with the Market layout.
- ``folder``: any folder of Market-named crops (``*.jpg``/``*.png``, searched recursively); all
  of them are training images, and evaluation runs every crop as a query against the others.
- ``unlabeled``: crops without identities (pid -1), see :func:`read_unlabeled`.

Training never reads identity labels: the training loader yields only (image, index, camera);
``pid`` is kept in the records for evaluation only.
"""

from __future__ import annotations

import csv
import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reid_edge.errors import DataError
from reid_edge.names import DATA_FORMATS

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "camera", "tracklet", "frame")

_MARKET_RE = re.compile(r"^(-?\d+)_c(\d+)")
_CAM_IN_NAME_RE = re.compile(r"_c(\d+)", re.IGNORECASE)
_CAM_FOLDER_RE = re.compile(r"^(?:cam|c|camera)[_-]?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    """One crop. ``index`` is its position in its split; ``pid`` is -1 when unknown."""

    path: str
    pid: int
    camid: int
    index: int
    tracklet: int = -1


@dataclass(frozen=True)
class ReidData:
    """A dataset: training crops and (possibly empty) query/gallery splits for evaluation."""

    name: str
    root: Path
    train: list[Sample]
    query: list[Sample] = field(default_factory=list)
    gallery: list[Sample] = field(default_factory=list)

    @property
    def has_test_split(self) -> bool:
        return bool(self.query) and bool(self.gallery)


def _reindex(samples: Sequence[Sample]) -> list[Sample]:
    return [replace(s, index=i) for i, s in enumerate(samples)]


def _list_images(folder: Path, recursive: bool = False) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} folder {path} does not exist")
    return path


def market_pid(name: str) -> int | None:
    """The identity in a Market/Duke file name (``0002_c1s1_000451_03.jpg`` -> 2, junk ``-1_c1...`` ->
    -1); None for a name that does not follow the ``PPPP_cC`` naming."""
    m = _MARKET_RE.match(name)
    return int(m.group(1)) if m else None


def _read_market_folder(folder: Path, *, keep_distractors: bool, recursive: bool = False) -> list[Sample]:
    """Market/Duke/CUHK03-NP names: the leading ``PPPP_cC`` gives pid and camera."""
    _require_dir(folder, "image")
    out: list[Sample] = []
    unnamed = 0
    for p in _list_images(folder, recursive):
        m = _MARKET_RE.match(p.name)
        if m is None:
            unnamed += 1
            continue
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1 or (pid == 0 and not keep_distractors):
            continue  # junk boxes are ignored by the Market protocol
        out.append(Sample(str(p), pid, cam, len(out)))
    if not out:
        hint = f" ({unnamed} files do not follow the PPPP_cC... naming)" if unnamed else ""
        raise DataError(f"no Market-named images in {folder}{hint}")
    if unnamed:
        warnings.warn(f"{folder}: skipped {unnamed} files whose names do not start with PPPP_cC", stacklevel=3)
    return out


def has_market_test_split(root: str | Path) -> bool:
    """``query/`` and ``bounding_box_test/`` both present: the Market/Duke evaluation protocol applies."""
    r = Path(root)
    return (r / "query").is_dir() and (r / "bounding_box_test").is_dir()


def read_market_layout(root: str | Path, name: str = "market1501") -> ReidData:
    """Market-1501, DukeMTMC-reID and CUHK03-NP (one variant folder) share this layout.

    ``bounding_box_train/`` may be absent (a test split only: evaluation needs just ``query/`` and
    ``bounding_box_test/``); ``train`` is then empty and training says so. The test split may be
    absent too (a site's training crops only): ``query`` and ``gallery`` are then empty and
    evaluation says so.
    """
    r = _require_dir(Path(root), "dataset")
    has_test = has_market_test_split(r)
    has_train = (r / "bounding_box_train").is_dir() or not has_test
    train = _read_market_folder(r / "bounding_box_train", keep_distractors=False) if has_train else []
    if not has_test:
        return ReidData(name, r, train)
    query = _read_market_folder(r / "query", keep_distractors=False)
    gallery = _read_market_folder(r / "bounding_box_test", keep_distractors=True)
    return ReidData(name, r, train, query, gallery)


def read_cuhk03(root: str | Path, variant: str = "detected") -> ReidData:
    """CUHK03-NP: ``root/detected`` or ``root/labeled``, each in the Market layout."""
    r = _require_dir(Path(root), "dataset")
    if variant not in ("detected", "labeled"):
        raise DataError(f"CUHK03 variant must be 'detected' or 'labeled', not {variant!r}")
    sub = r / variant
    if not sub.is_dir() and (r / "bounding_box_train").is_dir():
        sub = r  # pointed at the variant folder itself
    return read_market_layout(_require_dir(sub, f"CUHK03-NP {variant}"), name=f"cuhk03-{variant}")


def msmt17_camera(name: str) -> int:
    """Camera of an MSMT17 file name: third ``_`` field, 1-based (``0000_000_01_...`` -> 1)."""
    parts = Path(name).name.split("_")
    if len(parts) < 3 or not parts[2].isdigit():
        raise DataError(f"MSMT17 file name {name!r} lacks the camera field (PPPP_TTT_CC_...)")
    return int(parts[2])


def _read_msmt_list(list_file: Path, image_dir: Path) -> list[Sample]:
    if not list_file.is_file():
        raise DataError(f"MSMT17 list file {list_file} does not exist")
    out: list[Sample] = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise DataError(f"{list_file}:{lineno}: expected 'path label', got {line!r}")
        out.append(Sample(str(image_dir / fields[0]), int(fields[1]), msmt17_camera(fields[0]), len(out)))
    if not out:
        raise DataError(f"MSMT17 list file {list_file} is empty")
    return out


def read_msmt17(root: str | Path) -> ReidData:
    """MSMT17 (V1 ``train/``+``test/`` or V2 ``mask_train_v2/``+``mask_test_v2/``); train = train + val lists."""
    r = _require_dir(Path(root), "dataset")
    train_dir = next((r / d for d in ("train", "mask_train_v2") if (r / d).is_dir()), r / "train")
    test_dir = next((r / d for d in ("test", "mask_test_v2") if (r / d).is_dir()), r / "test")
    _require_dir(train_dir, "MSMT17 training image")
    _require_dir(test_dir, "MSMT17 test image")
    train = _read_msmt_list(r / "list_train.txt", train_dir)
    if (r / "list_val.txt").is_file():
        train = _reindex(train + _read_msmt_list(r / "list_val.txt", train_dir))
    query = _read_msmt_list(r / "list_query.txt", test_dir)
    gallery = _read_msmt_list(r / "list_gallery.txt", test_dir)
    return ReidData("msmt17", r, train, query, gallery)


def read_folder(root: str | Path) -> ReidData:
    """Any folder of Market-named crops: all training; evaluation is all-vs-all (see module doc)."""
    r = _require_dir(Path(root), "dataset")
    samples = _read_market_folder(r, keep_distractors=True, recursive=True)
    return ReidData("folder", r, samples)


def _camera_key(rel: Path) -> str | None:
    """Camera name from a relative path: a ``camN``/``cN`` folder, Market ``_cN`` or the parent folder."""
    for part in rel.parts[:-1]:
        m = _CAM_FOLDER_RE.match(part)
        if m:
            return f"c{int(m.group(1))}"
    m = _CAM_IN_NAME_RE.search(rel.stem)
    if m:
        return f"c{int(m.group(1))}"
    if len(rel.parts) > 1:
        return rel.parts[0]
    return None


def _camera_indices(keys: Sequence[str]) -> dict[str, int]:
    """``cN`` names keep their number; other names get indices after the largest number, sorted."""
    numbered = {k: int(k[1:]) for k in set(keys) if re.fullmatch(r"c\d+", k)}
    start = max(numbered.values(), default=0) + 1
    others = sorted(set(keys) - set(numbered))
    return {**numbered, **{k: start + i for i, k in enumerate(others)}}


def read_manifest(path: str | Path) -> list[Sample]:
    """Read a harvest manifest.

    Format (``manifest.csv``, written by ``reid-edge harvest``): a CSV file with the header
    ``path,camera,tracklet,frame`` and one row per crop:

    - ``path``: the crop, relative to the manifest's folder (or absolute);
    - ``camera``: camera name or number (``cam1``, ``c2``, ``lobby``, ``3``); names map to
      integer camera ids the same way sub-folder names do;
    - ``tracklet``: integer track id, unique within its camera; -1 when unknown;
    - ``frame``: integer frame index of the crop in its video (informational).

    Returns:
        samples with pid -1, the camera id and the tracklet id made unique across cameras
        (``-1`` stays ``-1``).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"manifest {p} does not exist")
    with open(p, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"manifest {p} lacks the column(s) {', '.join(missing)} "
                            "(header: path,camera,tracklet,frame)")
        rows = list(reader)
    if not rows:
        raise DataError(f"manifest {p} lists no crops")
    cam_names: list[str] = []
    for i, row in enumerate(rows, 2):
        cam = (row["camera"] or "").strip()
        if not cam:
            raise DataError(f"{p}:{i}: empty camera")
        m = _CAM_FOLDER_RE.match(cam)
        cam_names.append(f"c{int(m.group(1))}" if m else (f"c{int(cam)}" if cam.isdigit() else cam))
    cam_index = _camera_indices(cam_names)
    tracks: dict[tuple[int, int], int] = {}
    out: list[Sample] = []
    for i, (row, cam) in enumerate(zip(rows, cam_names), 2):
        try:
            tracklet = int(row["tracklet"]) if (row["tracklet"] or "").strip() else -1
        except ValueError:
            raise DataError(f"{p}:{i}: tracklet {row['tracklet']!r} is not an integer") from None
        img = Path(row["path"])
        img = img if img.is_absolute() else p.parent / img
        camid = cam_index[cam]
        gid = -1 if tracklet < 0 else tracks.setdefault((camid, tracklet), len(tracks))
        out.append(Sample(str(img), -1, camid, len(out), gid))
    return out


def read_unlabeled(root: str | Path) -> ReidData:
    """Crops without identities (pid -1), e.g. harvested from camera footage.

    With ``root/manifest.csv`` (see :func:`read_manifest`) the manifest lists the crops, their
    cameras and tracklets. Otherwise every image under ``root`` is used and its camera comes from
    a ``camN``/``cN`` folder in its path, a Market-like ``_cN`` in its name, or the name of its
    top-level sub-folder (each distinct name becomes one camera). Images directly in ``root``
    with no camera hint all get camera 0.
    """
    r = _require_dir(Path(root), "dataset")
    if (r / MANIFEST_NAME).is_file():
        return ReidData("unlabeled", r, read_manifest(r / MANIFEST_NAME))
    images = _list_images(r, recursive=True)
    if not images:
        raise DataError(f"no images (*.jpg, *.png) under {r}")
    keys = [_camera_key(p.relative_to(r)) for p in images]
    cam_index = _camera_indices([k for k in keys if k is not None])
    samples = [Sample(str(p), -1, cam_index[k] if k is not None else 0, i)
               for i, (p, k) in enumerate(zip(images, keys))]
    return ReidData("unlabeled", r, samples)


def detect_format(root: str | Path) -> str:
    """Guess the layout from the folder's content (never from its name)."""
    r = _require_dir(Path(root), "dataset")
    if (r / "list_train.txt").is_file():
        return "msmt17"
    if (r / "detected").is_dir() or (r / "labeled").is_dir():
        return "cuhk03"
    if (r / "bounding_box_train").is_dir() or has_market_test_split(r):
        sub = "bounding_box_train" if (r / "bounding_box_train").is_dir() else "query"
        names = [p.name for p in _list_images(r / sub)[:50]]
        if names and all(re.match(r"^\d+_c\d+_f\d+", n) for n in names):
            return "dukemtmc"
        return "market1501"
    if (r / MANIFEST_NAME).is_file():
        return "unlabeled"
    images = _list_images(r, recursive=True)[:200]
    if images and all(_MARKET_RE.match(p.name) for p in images):
        return "folder"
    return "unlabeled"


def read_dataset(root: str | Path, fmt: str = "auto", cuhk03_variant: str = "detected") -> ReidData:
    """Read a dataset in the given layout (``auto``: :func:`detect_format`).

    Raises:
        DataError: unknown format, missing folder or list file, no images.
    """
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt in ("market1501", "dukemtmc"):
        return read_market_layout(root, name=fmt)
    if fmt == "msmt17":
        return read_msmt17(root)
    if fmt == "cuhk03":
        return read_cuhk03(root, cuhk03_variant)
    if fmt == "folder":
        return read_folder(root)
    if fmt == "unlabeled":
        return read_unlabeled(root)
    raise DataError(f"unknown dataset format {fmt!r} (known: auto, {', '.join(DATA_FORMATS)})")


def check_readable(samples: Sequence[Sample], max_bad_fraction: float = 0.01) -> list[Sample]:
    """Decode every image; drop unreadable ones with a warning, re-index the rest.

    Raises:
        DataError: no images, or more than ``max_bad_fraction`` of them cannot be read.
    """
    import cv2

    if not samples:
        raise DataError("no images to read")
    good: list[Sample] = []
    bad: list[str] = []
    for s in samples:
        img = cv2.imread(s.path, cv2.IMREAD_COLOR)
        if img is None or img.size == 0:
            bad.append(s.path)
        else:
            good.append(s)
    if bad:
        if len(bad) > max_bad_fraction * len(samples):
            raise DataError(
                f"{len(bad)} of {len(samples)} images cannot be read (more than {max_bad_fraction:.0%}), "
                f"e.g. {bad[0]}"
            )
        warnings.warn(f"skipped {len(bad)} unreadable image(s) of {len(samples)}, e.g. {bad[0]}", stacklevel=2)
    return _reindex(good)


def dataset_fingerprint(samples: Sequence[Sample], root: str | Path) -> str:
    """sha256 over the sorted (path relative to ``root``, file size) pairs of ``samples``."""
    r = Path(root).resolve()
    entries = []
    for s in samples:
        p = Path(s.path).resolve()
        try:
            rel = p.relative_to(r).as_posix()
        except ValueError:
            rel = p.as_posix()
        entries.append(f"{rel}\t{p.stat().st_size}")
    h = hashlib.sha256()
    for e in sorted(entries):
        h.update(e.encode())
        h.update(b"\n")
    return h.hexdigest()


def split_calibration(samples: Sequence[Sample], count: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold ``count`` random training crops aside for INT8 calibration (seeded).

    Returns:
        ``(train, calibration)``; ``train`` is re-indexed 0..N-1 (memory-bank rows).
    """
    import numpy as np

    if count <= 0:
        return _reindex(samples), []
    if count >= len(samples):
        raise DataError(f"cannot hold {count} calibration images aside from only {len(samples)} training images")
    rng = np.random.default_rng(seed)
    held = set(rng.choice(len(samples), size=count, replace=False).tolist())
    calib = [s for i, s in enumerate(samples) if i in held]
    train = [s for i, s in enumerate(samples) if i not in held]
    return _reindex(train), calib


def evaluation_split(data: ReidData) -> tuple[list[Sample], list[Sample]] | None:
    """Query and gallery for evaluation, or None when the data has no identities.

    Market-like datasets use their query/gallery folders; a labelled ``folder`` dataset is
    evaluated all-vs-all (each crop queries the others; same-camera matches are ignored as
    in the Market protocol).
    """
    if data.has_test_split:
        return data.query, data.gallery
    labelled = [s for s in data.train if s.pid >= 0]
    if data.name == "folder" and labelled:
        return labelled, labelled
    return None
