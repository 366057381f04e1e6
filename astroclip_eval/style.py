"""How every figure and cut-out looks: one matplotlib style, the Legacy Survey viewer's colour mapping and the
spectral lines marked on spectra. Below the tasks and the report, so that both draw alike without a task importing
the report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "image.cmap": "viridis",
}
# The Legacy Survey viewer's colour mapping for g, r, z (per-band scales, offset, arcsinh softening).
LEGACY_RGB_SCALES = np.array([6.0, 3.4, 2.2])
LEGACY_RGB_OFFSET = 0.03
LEGACY_RGB_Q = 20.0


def use_style() -> None:
    plt.rcParams.update(STYLE)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """g/r/z image (H, W, 3) in nanomaggies -> RGB in [0, 1] as the Legacy Survey viewer maps it.

    Each band is scaled (g x6.0 -> blue, r x3.4 -> green, z x2.2 -> red) and offset by 0.03; one arcsinh stretch of
    the bands' mean intensity multiplies all three, so colour follows the flux ratios and the sky noise, which is
    near that offset in every band, stays grey instead of becoming coloured speckle (Lupton et al. 2004).
    """
    scaled = image * LEGACY_RGB_SCALES + LEGACY_RGB_OFFSET
    intensity = np.maximum(scaled, 0).mean(axis=-1, keepdims=True)
    stretch = np.arcsinh(LEGACY_RGB_Q * intensity) / np.sqrt(LEGACY_RGB_Q) / np.maximum(intensity, 1e-6)
    return np.clip(scaled * stretch, 0, 1)[..., ::-1]


# Strong rest-frame lines (Angstrom, air) marked at each galaxy's redshift: name shown on the query (Ca H and K once),
# rest wavelength, emission (dashed) or absorption (dotted).
SPECTRAL_LINES = [
    ("[O II]", 3727.1, "emission"), ("Ca H&K", 3933.7, "absorption"), ("", 3968.5, "absorption"),
    ("H\u03b2", 4861.3, "emission"), ("[O III]", 5006.8, "emission"), ("Mg b", 5175.3, "absorption"),
    ("Na D", 5892.9, "absorption"), ("H\u03b1", 6562.8, "emission"),
]
