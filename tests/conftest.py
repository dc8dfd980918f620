"""Shared test fixtures. Tests must pass without ../shared; tests that need it are marked ``shared``."""

from __future__ import annotations

import os

import pytest
import torch

from iznet.data.paths import shared_data_root

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """Never export into the user's ~/.cache: `iznet label` (runtime auto) exports the bundled models into this
    session's own ONNX cache, once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IZNET_ONNX_DIR", str(tmp_path_factory.mktemp("onnx_cache")))
        yield


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data, or skip with a clear reason."""
    root = shared_data_root()
    if root is None:
        pytest.skip("../shared/data is not present; this test needs the shared data")
    return root
