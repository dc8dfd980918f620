"""Fixtures of the detector tests."""

from __future__ import annotations

import pytest
import torch

from detect_helpers import synthetic_pack
from iznet.detect.pack import DetectionPack


@pytest.fixture
def tiny_pack() -> DetectionPack:
    return synthetic_pack()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and a busy shared CPU makes two threads crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
