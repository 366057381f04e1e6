"""The cut-out colour mapping: the Legacy Survey viewer's per-band scales and one shared arcsinh stretch."""

import numpy as np

from astroclip_eval.demo.simulate import SKY_SIGMA
from astroclip_eval.style import LEGACY_RGB_OFFSET, LEGACY_RGB_Q, LEGACY_RGB_SCALES, to_rgb


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


def test_similarity_spectra_name_each_galaxy_and_mark_its_lines_at_its_redshift():
    """Each spectrum's legend names its row, TARGETID and redshift; H-alpha is marked at 6562.8 (1 + z) for each
    galaxy whose redshift puts it on the grid, [O II] at 3727.1 (1 + z), in that galaxy's colour; the y range is set by
    the smoothed spectra, not by spikes in the raw flux."""
    import matplotlib.pyplot as plt

    from astroclip_eval.io.data import SPECTRUM_LENGTH
    from astroclip_eval.report.plotting import spectrum_plot

    rng = np.random.default_rng(0)
    spectra = {i: 1 + 0.1 * rng.normal(size=SPECTRUM_LENGTH) for i in (3, 7, 9)}
    spectra[7][100] = 1e6  # a cosmic ray
    redshifts, targetids = {3: 0.2, 7: 0.3, 9: 0.6}, {3: 39627000000000003, 7: 17, 9: 19}
    fig = spectrum_plot([3], {3: [7, 9]}, spectra, "t", redshifts, targetids)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["query: row 3, TARGETID 39627000000000003, z = 0.200", "#1: row 7, TARGETID 17, z = 0.300",
                      "#2: row 9, TARGETID 19, z = 0.600"]
    marks = {(round(line.get_xdata()[0], 1), line.get_color()) for line in ax.lines if len(line.get_xdata()) == 2}
    assert (round(6562.8 * 1.2, 1), "black") in marks and (round(6562.8 * 1.3, 1), "C0") in marks
    assert not any(x == round(6562.8 * 1.6, 1) for x, _ in marks)  # 10,500 A: beyond the grid
    assert (round(3727.1 * 1.6, 1), "C1") in marks
    assert "H\u03b1" in [t.get_text() for t in ax.texts] and ax.get_ylim()[1] < 3
    plt.close(fig)
