"""The simulator: determinism, the published layout, and physical sanity of spectra and images."""

import numpy as np
import pytest

from astroclip_eval import simulate as sim
from astroclip_eval.data import Survey, wavelength_grid


@pytest.fixture(scope="module")
def small():
    cfg = sim.SurveyConfig(n_galaxies=300, image_size=32, processes=1, seed=7)
    return cfg, sim.simulate(cfg)


def test_deterministic_for_a_seed(small):
    cfg, cols = small
    again = sim.simulate(cfg)
    for name in cols:
        assert np.array_equal(cols[name], again[name]), name
    other = sim.simulate(sim.SurveyConfig(n_galaxies=300, image_size=32, processes=1, seed=8))
    assert not np.array_equal(cols["redshifts"], other["redshifts"])


def test_processes_do_not_change_images(small):
    cfg, cols = small
    pop = sim.sample_population(cfg)
    two = sim.render_images(pop, sim.SurveyConfig(n_galaxies=300, image_size=32, processes=2, seed=7))
    assert np.array_equal(two, cols["images"])


def test_layout_and_selection(small, tmp_path):
    cfg, cols = small
    assert cols["images"].shape == (300, 32, 32, 3) and cols["images"].dtype == np.float32
    assert cols["spectra"].shape == (300, 7781) and cols["spectra"].dtype == np.float32
    assert cols["targetids"].dtype == np.int64 and np.unique(cols["targetids"]).size == 300
    path = tmp_path / "survey.h5"
    sim.write_survey(path, cols, cfg.n_groups)
    with Survey(path) as s:
        # 10 groups of 30 rows: the last 6 rows of each are validation rows.
        rows = np.concatenate([np.arange(30 * g + 24, 30 * g + 30) for g in range(10)])
        assert s.n_rows("valid") == rows.size == 60
        assert np.array_equal(s.read("valid", "targetids"), cols["targetids"][rows])
    # ~1% dead fibres, a tail beyond z = 0.8, everything brighter than the z-band limit.
    big = sim.sample_population(sim.SurveyConfig(n_galaxies=5000))
    zmag = -2.5 * np.log10(big["maggies"][:, 2])
    assert zmag.max() < 20.0
    assert 0.005 < np.mean(big["redshift"] > 0.8) < 0.06


def _galaxy(z: float, bulge: np.ndarray, disc: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "redshift": np.array([z]), "bulge": bulge[None] * 1e-12, "disc": disc[None] * 1e-12,
        "r_bulge": np.array([0.5]), "r_disc": np.array([1.0]), "bt": np.array([0.5]),
    }


def test_break_and_lines_move_with_redshift():
    wave = wavelength_grid()
    old = np.zeros(5)
    old[sim.OLD] = 1.0
    lines = np.zeros(5)
    lines[sim.LINES] = 1.0
    quiet = sim.SurveyConfig(spectrum_noise=1e-9)
    rng = np.random.default_rng(0)
    for z in (0.1, 0.3, 0.6):
        spec = sim.render_spectra(_galaxy(z, old, np.zeros(5)), quiet, rng)[0]
        brk = 4000 * (1 + z)
        red = spec[(wave > brk + 50) & (wave < brk + 250)].mean()
        blue = spec[(wave > brk - 250) & (wave < brk - 50)].mean()
        assert red / blue > 1.4, (z, red / blue)
        spec = sim.render_spectra(_galaxy(z, np.zeros(5), lines), quiet, rng)[0]
        halpha = 6564.6 * (1 + z)
        oii = 3728.0 * (1 + z)
        line = halpha if halpha < 9800 else oii
        peak = wave[np.argmax(np.where(np.abs(wave - line) < 60, spec, -np.inf))]
        assert abs(peak - line) < 8, (z, peak, line)


def test_images_smaller_and_redder_with_redshift():
    pop = sim.sample_population(sim.SurveyConfig(n_galaxies=3000))
    z = pop["redshift"]
    mags = -2.5 * np.log10(pop["maggies"])
    low, high = z < 0.2, (z > 0.4) & (z < 0.8)
    assert np.median(mags[high, 0] - mags[high, 2]) > np.median(mags[low, 0] - mags[low, 2]) + 0.3  # g - z
    size = pop["r_disc"]
    assert np.median(size[high]) < 0.7 * np.median(size[low])
