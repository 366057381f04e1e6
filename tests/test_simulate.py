"""The simulator: determinism, the published layout, and physical sanity of spectra and images."""

import numpy as np
import pytest

from astroclip_eval.demo import simulate as sim
from astroclip_eval.demo import template_fit
from astroclip_eval.io.data import Survey, wavelength_grid


@pytest.fixture(scope="module")
def small():
    cfg = sim.SurveyConfig(n_galaxies=300, image_size=32, processes=1, seed=7)
    return cfg, sim.simulate(cfg).columns


def test_deterministic_for_a_seed(small):
    cfg, cols = small
    again = sim.simulate(cfg).columns
    for name in cols:
        assert np.array_equal(cols[name], again[name]), name
    other = sim.simulate(sim.SurveyConfig(n_galaxies=300, image_size=32, processes=1, seed=8)).columns
    assert not np.array_equal(cols["redshifts"], other["redshifts"])


def test_processes_do_not_change_images(small):
    cfg, cols = small
    pop = sim.secure_population(cfg)[0]
    two = sim.render_images(pop, sim.SurveyConfig(n_galaxies=300, image_size=32, processes=2, seed=7))
    assert np.array_equal(two, cols["images"])


def test_layout_and_selection(small, tmp_path):
    cfg, cols = small
    assert cols["images"].shape == (300, 32, 32, 3) and cols["images"].dtype == np.float32
    assert cols["spectra"].shape == (300, 7781) and cols["spectra"].dtype == np.float32
    assert cols["targetids"].dtype == np.int64 and np.unique(cols["targetids"]).size == 300
    path = tmp_path / "survey.h5"
    sim.write_survey(path, sim.SimulatedSurvey(cols, {"simulator": "test"}), cfg.n_groups)
    with Survey(path) as s:
        # 10 groups of 30 rows: the last 6 rows of each are validation rows.
        rows = np.concatenate([np.arange(30 * g + 24, 30 * g + 30) for g in range(10)])
        assert s.n_rows("valid") == rows.size == 60
        assert np.array_equal(s.read("valid", "targetids"), cols["targetids"][rows])
    # ~1% dead fibres, a tail beyond z = 0.8, everything brighter than the z-band limit.
    big = sim.sample_population(sim.SurveyConfig(), 5000)
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
        spec = sim.render_spectra(_galaxy(z, old, np.zeros(5)), quiet, rng)[0][0]
        brk = 4000 * (1 + z)
        red = spec[(wave > brk + 50) & (wave < brk + 250)].mean()
        blue = spec[(wave > brk - 250) & (wave < brk - 50)].mean()
        assert red / blue > 1.4, (z, red / blue)
        spec = sim.render_spectra(_galaxy(z, np.zeros(5), lines), quiet, rng)[0][0]
        halpha = 6564.6 * (1 + z)
        oii = 3728.0 * (1 + z)
        line = halpha if halpha < 9800 else oii
        peak = wave[np.argmax(np.where(np.abs(wave - line) < 60, spec, -np.inf))]
        assert abs(peak - line) < 8, (z, peak, line)


def test_images_smaller_and_redder_with_redshift():
    pop = sim.sample_population(sim.SurveyConfig(), 3000)
    z = pop["redshift"]
    mags = -2.5 * np.log10(pop["maggies"])
    low, high = z < 0.2, (z > 0.4) & (z < 0.8)
    assert np.median(mags[high, 0] - mags[high, 2]) > np.median(mags[low, 0] - mags[low, 2]) + 0.3  # g - z
    size = pop["r_disc"]
    assert np.median(size[high]) < 0.7 * np.median(size[low])


# -- selection by redshift success --------------------------------------------------------------------------


def _direct_fit(spectrum: np.ndarray, sigma: np.ndarray, zgrid: np.ndarray, block: int) -> tuple[float, float]:
    """Best z and delta-chi^2 by one weighted least-squares solve per redshift (no shortcuts)."""
    rest_wave, flux = sim.templates()
    wave = wavelength_grid()
    n = (wave.size // block) * block

    def binned(x: np.ndarray) -> np.ndarray:
        return x[..., :n].reshape(*x.shape[:-1], -1, block).mean(axis=-1)

    y = binned(spectrum.astype(float))
    w = np.sqrt(block / binned(sigma.astype(float) ** 2))
    chi2 = []
    for z in zgrid:
        t = binned(np.stack([np.interp(wave / (1 + z), rest_wave, f) for f in flux]))
        coef = np.linalg.lstsq((t * w).T, y * w, rcond=None)[0]
        chi2.append((((y - coef @ t) * w) ** 2).sum())
    chi2 = np.array(chi2)
    best = chi2.argmin()
    far = np.abs(zgrid - zgrid[best]) > template_fit.SECURE_DZ
    return zgrid[best], chi2[far].min() - chi2[best]


@pytest.mark.numeric
def test_template_fit_matches_a_direct_least_squares_fit():
    cfg = sim.SurveyConfig()
    pop = sim.sample_population(cfg, 12, stream=5)
    spectra, sigma = sim.render_spectra(pop, cfg, np.random.default_rng(0))
    zgrid = np.round(np.arange(0.0, 1.3, 0.004), 3)
    rest_wave, flux = sim.templates()
    fit = template_fit.fit_redshifts(spectra, sigma, wavelength_grid(), rest_wave, flux, zgrid, block=8, chunk=5)
    n_blocks = wavelength_grid().size // 8
    for i in range(12):
        z_best, delta = _direct_fit(spectra[i], sigma[i], zgrid, 8)
        assert fit.z_best[i] == z_best, i
        assert (fit.delta_chi2[i] > cfg.min_delta_chi2) == (delta > cfg.min_delta_chi2), i  # the decision, exactly
        # chi^2 = y'Wy - b'A^-1 b with b and A summed in float32 over n_blocks terms: each sum is off by about
        # sqrt(n_blocks) * eps32 relative (rounding errors of a dot product add like a random walk; which BLAS kernel
        # runs, AVX2 or AVX-512, changes their order and so the last digits), b'A^-1 b ~ y'Wy picks that up twice, and
        # delta-chi^2 is a difference of two such chi^2. Measured: up to 5.4 eps32 * y'Wy on two CPUs; bound 4 sqrt(n).
        y = template_fit._block_mean(spectra[i].astype(float), 8)
        y_w_y = np.sum(y**2 * 8 / template_fit._block_mean(sigma[i].astype(float) ** 2, 8))
        bound = 4 * np.sqrt(n_blocks) * np.finfo(np.float32).eps * y_w_y
        assert abs(fit.delta_chi2[i] - delta) < bound, (i, fit.delta_chi2[i], delta, bound)


def test_selection_keeps_secure_redshifts(small, tmp_path):
    """Every kept galaxy's spectrum gives back its redshift; the rejected candidates hold the failures; the file
    records the threshold and the kept fraction; dead fibres stay for the valid filter."""
    cfg, cols = small
    pop, spectra, selection = sim.secure_population(cfg)
    sigma = sim.render_spectra(pop, cfg, np.random.default_rng(0))[1]  # the noise level depends on the signal only
    rest_wave, flux = sim.templates()
    fit = template_fit.fit_redshifts(spectra, sigma, wavelength_grid(), rest_wave, flux, sim.FIT_ZGRID)
    assert np.all(fit.delta_chi2 > cfg.min_delta_chi2)
    assert np.all(np.abs(fit.z_best - pop["redshift"]) < 0.01)
    assert selection["min_delta_chi2"] == 25.0 and selection["candidates"] > 300
    assert 0.5 < selection["kept_fraction"] < 0.85
    assert np.array_equal(pop["redshift"].astype(np.float32), cols["redshifts"])
    assert (cols["spectra"].max(axis=1) == 0).sum() >= 1
    path = tmp_path / "survey.h5"
    sim.write_survey(path, sim.simulate(cfg), cfg.n_groups)
    with Survey(path) as f:
        assert f.selection == pytest.approx(selection)
    everyone = sim.secure_population(sim.SurveyConfig(n_galaxies=300, seed=7, min_delta_chi2=0))
    assert everyone[2]["kept_fraction"] == 1.0 and everyone[2]["candidates"] == 300
