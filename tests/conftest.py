"""Shared fixtures: the real data folder beside the checkout, and tame CPU threading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# as the CLI does: passive OpenMP waiting keeps a shared 2-core box from thrashing
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REID_EDGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real Market-1501 crops, frames and clips); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def market_mini(shared_data: Path) -> Path:
    path = shared_data / "market1501_mini"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(autouse=True, scope="session")
def _limit_threads() -> None:
    # CI has 2 cores; oversubscription makes CPU tests slower, not faster.
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass


@pytest.fixture()
def one_torch_thread():  # type: ignore[no-untyped-def]
    """One intra-op thread for the test: small models gain nothing from two on shared cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
