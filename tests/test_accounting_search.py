"""The shared calibration search: smallest noise level meeting a target ε."""

from __future__ import annotations

import pytest

from product_noise.accounting.search import smallest_noise


@pytest.mark.parametrize("target", [0.01, 0.3, 1.0, 7.0, 900.0])
def test_closed_form(target: float) -> None:
    """ε(s) = 1/s: the answer is 1/target, returned on the safe side within rtol."""
    s = smallest_noise(lambda s: 1.0 / s, target, rtol=1e-6, low=1e-4, high=1e6)
    assert 1.0 / s <= target
    assert s == pytest.approx(1.0 / target, rel=1e-6)


def test_limits() -> None:
    # even the smallest allowed noise meets the target: the lower limit is returned
    assert smallest_noise(lambda s: 1.0 / s, 1e5, rtol=1e-3, low=1e-3, high=10) == 1e-3
    with pytest.raises(ValueError, match="not reachable with noise <= 10 \\(setting X\\)"):
        smallest_noise(lambda s: 1.0 / s, 0.01, rtol=1e-3, low=1e-3, high=10, what="setting X")
    with pytest.raises(ValueError, match="rtol"):
        smallest_noise(lambda s: 1.0 / s, 1.0, rtol=0.0, low=1e-3, high=10)


def test_counts_evaluations() -> None:
    """When the answer is above 1 nothing below 1 is evaluated (small σ are the expensive ones)."""
    seen: list[float] = []

    def eps(s: float) -> float:
        seen.append(s)
        return 10.0 / s

    s = smallest_noise(eps, 1.0, rtol=1e-3, low=1e-3, high=1e3)
    assert s == pytest.approx(10.0, rel=1e-3) and min(seen) == 1.0
