"""The cut-out colour mapping: the Legacy Survey viewer's per-band scales and one shared arcsinh stretch."""

import numpy as np

from astroclip_eval.demo.simulate import SKY_SIGMA
from astroclip_eval.report.plotting import LEGACY_RGB_OFFSET, LEGACY_RGB_Q, LEGACY_RGB_SCALES, to_rgb


def test_colour_follows_the_scaled_flux_ratios():
    g, r, z = 0.05, 0.12, 0.3  # nanomaggies per pixel, a red galaxy
    rgb = to_rgb(np.full((4, 4, 3), (g, r, z)))
    scaled = np.array([z * 2.2, r * 3.4, g * 6.0]) + 0.03  # red, green, blue
    mean = scaled.mean()
    expected = scaled * np.arcsinh(20 * mean) / np.sqrt(20) / mean
    assert np.allclose(rgb[0, 0], expected) and rgb[0, 0, 0] > rgb[0, 0, 2]
    assert (LEGACY_RGB_SCALES.tolist(), LEGACY_RGB_OFFSET, LEGACY_RGB_Q) == ([6.0, 3.4, 2.2], 0.03, 20.0)


def test_sky_noise_is_a_dim_neutral_grey():
    """Pure sky noise at the survey's depth averages to a neutral grey and stays dim: the stretch is fixed, not
    normalised per image, so an empty cut-out is not stretched into bright speckle."""
    rng = np.random.default_rng(0)
    sky = rng.normal(size=(64, 64, 3)) * np.array([SKY_SIGMA[b] for b in "grz"])
    rgb = to_rgb(sky)
    means = rgb.mean(axis=(0, 1))
    assert means.max() / means.min() < 1.3
    brightness = rgb.mean(axis=-1)
    assert 0.05 < np.median(brightness) < 0.25 and np.percentile(brightness, 99) < 0.6
