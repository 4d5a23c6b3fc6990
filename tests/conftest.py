"""Fixtures and settings shared by several test modules.

Only what at least two modules defined identically lives here; module-specific variants (e.g.
test_dpgen's image-shaped digits split) stay in their modules and override these by name.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

# one intra-op thread: the suite runs under pytest-xdist on two cores, and the statistical
# tests' run times assume it (was set at import time by seven test modules)
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's 8×8 digits in [0, 1] (float32, flat), split 1437 / 360 by a seeded permutation."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:1437], perm[1437:]
    return X[tr], y[tr], X[te], y[te]


@pytest.fixture(autouse=True)
def _restore_mechanism_registry():
    """Every test leaves the registry as it found it (user mechanisms registered in a test are
    removed afterwards), so registrations never leak between tests."""
    from product_noise.mechanisms.registry import REGISTRY

    before = set(REGISTRY.names())
    yield
    for name in set(REGISTRY.names()) - before:
        REGISTRY.unregister(name)
