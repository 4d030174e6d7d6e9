"""Calibration by simulation: the default test's false-positive rate is alpha across designs.

About 2,000 planted-null studies per design, so a method at 8 % instead of 5 % fails (3 standard
errors of a rate of 5 % over 2,000 studies are 1.5 points); the method the tool used before is run
alongside to show that these tests catch a miscalibrated method.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy import stats as sps

from bench.simulation import calibration
from bench.simulation.calibration import CalibrationDesign

STUDIES = 2000
ALPHA = 0.05
TOLERANCE = 0.02  # the bound; 3 standard errors at 2,000 studies are 0.015

DESIGNS = [
    CalibrationDesign(3, 2, "grid"),
    CalibrationDesign(10, 4, "single"),
    CalibrationDesign(6, 4, "grid", replicates=4),
    CalibrationDesign(24, 4, "random"),
    CalibrationDesign(10, 7, "unbalanced"),
    CalibrationDesign(100, 4, "unbalanced"),
    CalibrationDesign(24, 4, "grid", noise_ratio=1.6),
    CalibrationDesign(6, 7, "random", noise_ratio=1.6),
]


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: d.label)
def test_default_test_is_calibrated(design: CalibrationDesign) -> None:
    p = calibration.simulate_calibration(
        design, 0.0, STUDIES, np.random.default_rng(zlib.crc32(design.label.encode()))
    )
    rate = calibration.rejection_rate(p["signal"], ALPHA)
    assert abs(rate - ALPHA) < TOLERANCE, rate
    # Uniform p-values, not only right at alpha.
    assert sps.kstest(p["signal"], "uniform").pvalue > 0.001
    if design.noise_ratio == 1:
        for error in ("noise", "pooled"):
            assert abs(calibration.rejection_rate(p[error], ALPHA) - ALPHA) < TOLERANCE, error
    else:  # noise measured at one configuration understates it: those error terms are liberal
        assert calibration.rejection_rate(p["noise"], ALPHA) > 0.08


def test_the_replaced_split_test_fails_this_check() -> None:
    """The old method (signal effect vs noise splits) at 6 noise runs: far above alpha, so the
    calibration tests above would fail it."""
    p = calibration.simulate_calibration(
        CalibrationDesign(6, 4, "grid", replicates=4), 0.0, 1000, np.random.default_rng(1)
    )
    assert calibration.rejection_rate(p["splits"], ALPHA) > 0.12


def test_power_grows_with_the_effect() -> None:
    design = CalibrationDesign(24, 4, "grid")
    rates = [
        calibration.rejection_rate(
            calibration.simulate_calibration(design, effect, 500, np.random.default_rng(2))[
                "signal"
            ]
        )
        for effect in (0.0, 1.0, 2.0, 3.0)
    ]
    assert rates == sorted(rates) and rates[-1] > 0.9
