"""Simulate a DESI x Legacy Survey validation file in the published AstroCLIP layout.

Physics, in brief. Galaxies are drawn from a Schechter luminosity function (with luminosity evolution) in a
flat LambdaCDM volume and kept if brighter than the survey's z-band limit. Each galaxy is a bulge (old stellar
templates) plus a disc (star-forming templates with emission lines): non-negative mixtures of kcorrect's
kcorrect-default-v4 templates. Its spectrum is that SED redshifted and dimmed with the luminosity distance,
cut to the DESI grid, scaled by the light a 1.5 arcsec fibre collects, with sky-dominated noise. Its g/r/z
fluxes come from the DECam responses that kcorrect ships; GalSim renders a de Vaucouleurs bulge and an
exponential disc (sizes from size-luminosity relations and the angular diameter distance) convolved with a
Moffat PSF on 0.262 arcsec pixels, with sky noise at Legacy Survey depth. The same object gives both the
image and the spectrum, so redshift is learnable from each.

Selection by redshift success. The published file's redshifts are DESI catalogue redshifts, secure fits of the
same spectra, so a galaxy whose spectrum cannot reveal its redshift is not in it. The simulator draws candidates,
fits each spectrum with its own templates and noise (`astroclip_eval.demo.template_fit`), and keeps a galaxy only when
the best redshift beats every solution more than 0.01 away by `min_delta_chi2` (DESI's secure samples ask 15-40;
Redrock flags below 9). The label stays the true redshift; kept galaxies' fits agree with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import h5py
import numpy as np

from astroclip_eval.demo.catalogues import catalogues
from astroclip_eval.demo.template_fit import fit_redshifts
from astroclip_eval.demo.universe import cosmology, kcorrect_templates
from astroclip_eval.io.atomic import atomic_path
from astroclip_eval.io.data import COLUMNS, wavelength_grid

log = logging.getLogger(__name__)

BANDS = ("g", "r", "z")
PIXEL_SCALE = 0.262  # arcsec, Legacy Survey
PSF_FWHM = {"r": 1.30}  # arcsec, typical DR9 seeing; one PSF for all bands (a simplification)
# Per-pixel sky noise in nanomaggies, from DR9-like 5-sigma point-source depths g 24.0, r 23.4, z 22.5.
SKY_SIGMA = {"g": 0.0065, "r": 0.011, "z": 0.028}
FIBRE_RADIUS = 0.75  # arcsec, DESI fibre
OLD, LINES, YOUNG, OLD2, MID = range(5)  # the five kcorrect-default-v4 components


@dataclass(frozen=True)
class SurveyConfig:
    """Size and selection of a simulated survey; every field is a config value of the `simulate` rule."""

    n_galaxies: int = 8000
    image_size: int = 64
    n_groups: int = 10
    seed: int = 42
    mag_limit_z: float = 20.0
    zero_spectrum_fraction: float = 0.01
    spectrum_noise: float = 1.0  # multiplies the DESI-like noise level
    min_delta_chi2: float = 25.0  # redshift-success selection; 0 keeps every candidate
    processes: int = 2


@dataclass(frozen=True)
class SimulatedSurvey:
    """The file's columns (in file order) and the attributes that describe how it was made."""

    columns: dict[str, np.ndarray]
    attrs: dict[str, float | int | str]
    catalogues: dict[str, Any] = field(default_factory=dict)  # file name -> table (simulate_catalogues)


FIT_BLOCK = 8  # pixels averaged per fit bin (6.4 Angstrom): delta-chi^2 within 4% of 4-pixel bins, 2x faster
FIT_ZGRID = np.round(np.arange(0.0, 1.3005, 0.001), 3)  # beyond the sample's deepest galaxy, for wrong solutions


# -- cosmology and templates ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def templates() -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame wavelength (Angstrom) and the five kcorrect templates, each scaled to unit mean at 5000-6000 A."""
    t = kcorrect_templates()
    wave = np.asarray(t.wave, dtype=np.float64)
    flux = np.asarray(t.flux, dtype=np.float64)
    norm = flux[:, (wave > 5000) & (wave < 6000)].mean(axis=1, keepdims=True)
    return wave, flux / norm


@lru_cache(maxsize=1)
def responses() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """DECam g, r, z responses shipped with kcorrect: wavelength (Angstrom) and throughput."""
    import kcorrect.response

    out = {}
    for band in BANDS:
        r = kcorrect.response.Response(filename=f"decam_{band}.dat")
        out[band] = (np.asarray(r.wave, dtype=np.float64), np.asarray(r.response, dtype=np.float64))
    return out


def ab_maggies(wave: np.ndarray, flam: np.ndarray, band: str) -> np.ndarray:
    """AB maggies through a DECam band of f_lambda (erg/s/cm^2/A) sampled on `wave` (last axis)."""
    rw, rr = responses()[band]
    resp = np.interp(wave, rw, rr, left=0.0, right=0.0)
    c = 2.99792458e18  # Angstrom/s
    num = np.trapezoid(flam * wave * resp, wave, axis=-1)
    den = np.trapezoid(3631e-23 * c / wave**2 * wave * resp, wave)
    return num / den


@lru_cache(maxsize=1)
def _band_table() -> tuple[np.ndarray, np.ndarray]:
    """Observed maggies per template and band on a redshift grid, for unit templates at 10 pc (no dimming).

    Shape (n_z, 5, 3). Mixtures are linear, so a galaxy's magnitudes are an interpolation and a dot product.
    """
    wave, flux = templates()
    zgrid = np.linspace(0.0, 1.4, 141)
    obs = np.linspace(3000.0, 11000.0, 4000)
    table = np.empty((zgrid.size, flux.shape[0], len(BANDS)))
    for i, z in enumerate(zgrid):
        f = np.stack([np.interp(obs / (1 + z), wave, t) for t in flux]) / (1 + z)
        for j, band in enumerate(BANDS):
            table[i, :, j] = ab_maggies(obs, f, band)
    return zgrid, table


def _band_maggies(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, 3) observed g/r/z maggies at 10 pc of galaxies with template weights (n, 5) at redshifts z."""
    zgrid, table = _band_table()
    per_template = np.stack(
        [np.stack([np.interp(z, zgrid, table[:, t, b]) for b in range(len(BANDS))], -1) for t in range(5)], 1
    )
    return np.einsum("nt,ntb->nb", weights, per_template)


# -- population ------------------------------------------------------------------------------------------


def _mixtures(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Template weights (n, 5) of bulge (old stars) and disc (star formation, emission lines) components."""
    bulge = np.zeros((n, 5))
    f_old = rng.uniform(0.0, 1.0, n)
    bulge[:, OLD], bulge[:, OLD2], bulge[:, MID] = f_old, 1 - f_old, rng.uniform(0.0, 0.3, n)
    disc = np.zeros((n, 5))
    disc[:, YOUNG] = rng.uniform(0.3, 1.0, n)
    disc[:, MID] = rng.uniform(0.0, 1.0, n)
    disc[:, LINES] = rng.uniform(0.02, 0.3, n)  # nebular emission: most star-forming discs show lines
    return bulge / bulge.sum(1, keepdims=True), disc / disc.sum(1, keepdims=True)


def sample_population(cfg: SurveyConfig, n: int, stream: int = 0) -> dict[str, np.ndarray]:
    """Draw n galaxies of a magnitude-limited sample: redshift, luminosity, bulge/disc mixtures, sizes and shapes.

    Each `stream` is an independent draw of the same seed (the selection draws candidates in batches)."""
    rng = np.random.default_rng([cfg.seed, 0, stream])
    cosmo = cosmology()
    zgrid = np.linspace(0.005, 1.3, 600)
    dvdz = cosmo.differential_comoving_volume(zgrid).value
    cdf = np.cumsum(dvdz)
    cdf /= cdf[-1]
    dl_grid = cosmo.luminosity_distance(zgrid).to("pc").value
    da_grid = cosmo.angular_diameter_distance(zgrid).to("kpc").value
    mstar, alpha, q_evol = -21.0, -1.15, 1.5  # Schechter M* (r, h=0.7) and faint slope; brightening per unit z
    kept: list[dict[str, np.ndarray]] = []
    n_kept = 0
    while n_kept < n:
        m = 400_000
        z = np.interp(rng.uniform(size=m), cdf, zgrid)
        # Schechter in magnitudes by rejection from a uniform proposal over [-24.5, -17].
        mag = rng.uniform(-24.5, -17.0, m)
        x = 10 ** (-0.4 * (mag - (mstar - q_evol * z)))
        phi = x ** (alpha + 1) * np.exp(-x)
        keep = rng.uniform(size=m) * phi.max() < phi
        z, mag = z[keep], mag[keep]
        m = z.size
        # Brighter galaxies are more often bulge-dominated (the red sequence); B/T sets colour and shape.
        p_red = 1 / (1 + np.exp((mag + 20.8) / 0.6))
        red = rng.uniform(size=m) < p_red
        bt = np.where(red, rng.beta(6, 2, m), rng.beta(1.2, 5, m))
        bulge, disc = _mixtures(rng, m)
        # Scale each component so the bulge carries a fraction bt of the rest-frame r-band light.
        rest = _band_maggies(np.zeros(m), bulge)[:, 1], _band_maggies(np.zeros(m), disc)[:, 1]
        total = 10 ** (-0.4 * mag)
        bulge *= (bt * total / rest[0])[:, None]
        disc *= ((1 - bt) * total / rest[1])[:, None]
        weights = bulge + disc
        dimming = (10.0 / np.interp(z, zgrid, dl_grid)) ** 2
        maggies = _band_maggies(z, weights) * dimming[:, None]
        sel = -2.5 * np.log10(maggies[:, 2]) < cfg.mag_limit_z
        kept.append(
            dict(
                redshift=z[sel], absmag=mag[sel], bt=bt[sel], bulge=bulge[sel] * dimming[sel, None],
                disc=disc[sel] * dimming[sel, None], maggies=maggies[sel],
            )
        )
        n_kept += int(sel.sum())
    pop = {k: np.concatenate([d[k] for d in kept])[:n] for k in kept[0]}
    # Sizes (kpc) from size-luminosity relations of early and late types, 0.2 dex scatter.
    lum = -0.4 * (pop["absmag"] + 21.0)
    r_bulge = 10 ** (0.40 + 0.56 * lum + rng.normal(0, 0.2, n))
    r_disc = 10 ** (0.65 + 0.26 * lum + rng.normal(0, 0.2, n))
    kpc_per_arcsec = np.interp(pop["redshift"], zgrid, da_grid) * np.pi / (180 * 3600)
    pop["r_bulge"] = r_bulge / kpc_per_arcsec
    pop["r_disc"] = r_disc / kpc_per_arcsec
    pop["q"] = rng.uniform(0.3, 1.0, n)
    pop["beta"] = rng.uniform(0, np.pi, n)
    pop["offset"] = rng.normal(0, 0.3, (n, 2))  # pixels
    return pop


# -- spectra ---------------------------------------------------------------------------------------------


def sky_spectrum(wave: np.ndarray) -> np.ndarray:
    """Dark-ish sky in a DESI fibre, 1e-17 erg/s/cm^2/A: a red-rising continuum plus the brightest lines."""
    sky = 1.2 + 1.8 * ((wave - 3600) / 6200) ** 2
    lines = [5577.3, 5889.9, 6300.3, 6363.8] + list(np.arange(6850, 9800, 65.0))
    strength = [30.0, 8.0, 10.0, 4.0] + [6.0 + 6.0 * (w > 7700) for w in np.arange(6850, 9800, 65.0)]
    for centre, amp in zip(lines, strength):
        sky = sky + amp * np.exp(-0.5 * ((wave - centre) / 1.2) ** 2)
    return sky


def fibre_fraction(r_bulge: np.ndarray, r_disc: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """Fraction of a galaxy's light inside the fibre, treating each seeing-convolved component as Gaussian."""
    seeing = PSF_FWHM["r"] / 2

    def frac(r: np.ndarray) -> np.ndarray:
        return 1 - 2.0 ** (-(FIBRE_RADIUS**2) / (r**2 + seeing**2))

    return bt * frac(r_bulge) + (1 - bt) * frac(r_disc)


def render_spectra(
    pop: dict[str, np.ndarray], cfg: SurveyConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Observed-frame spectra (n, 7781) in 1e-17 erg/s/cm^2/A with DESI-like noise, and that noise's per-pixel
    sigma (what a pipeline's inverse variance holds), both float32."""
    wave_rest, flux = templates()
    wave = wavelength_grid()
    sky = sky_spectrum(wave)
    frac = fibre_fraction(pop["r_bulge"], pop["r_disc"], pop["bt"])
    n = pop["redshift"].size
    out = np.empty((n, wave.size), dtype=np.float32)
    noise = np.empty((n, wave.size), dtype=np.float32)
    for i in range(n):
        z = pop["redshift"][i]
        rest = np.stack([np.interp(wave / (1 + z), wave_rest, t) for t in flux])
        weights = pop["bulge"][i] + pop["disc"][i]
        # Weights carry f_lambda in erg/s/cm^2/A (already dimmed); DESI's unit is 1e-17 of that.
        signal = frac[i] * (weights @ rest) / (1 + z) * 1e17
        # Noise: sky-dominated with a Poisson term from the galaxy, tuned to DESI bright-time depth
        # (continuum S/N of a few per pixel at r ~ 19.5).
        sigma = cfg.spectrum_noise * 0.45 * np.sqrt(sky + np.maximum(signal, 0))
        out[i] = signal + sigma * rng.standard_normal(wave.size)
        noise[i] = sigma
    return out, noise


# -- images ----------------------------------------------------------------------------------------------


def _render_images(args: tuple[dict[str, np.ndarray], int, int, int, int]) -> np.ndarray:
    """Render galaxies [lo, hi) of the population; one RNG stream per galaxy keeps results process-independent.

    Bulge and disc are drawn once each (convolved with the r-band PSF) and combined per band with their own
    fluxes, so colour gradients survive at a third of the cost of drawing every band separately.
    """
    import galsim

    pop, size, seed, lo, hi = args
    psf = galsim.Moffat(beta=3.5, fwhm=PSF_FWHM["r"])
    gsp = galsim.GSParams(maximum_fft_size=16384)
    sigma = np.array([SKY_SIGMA[b] for b in BANDS], dtype=np.float32)
    out = np.empty((hi - lo, size, size, 3), dtype=np.float32)
    for k, i in enumerate(range(lo, hi)):
        rng = np.random.default_rng([seed, 2, i])
        shear = galsim.Shear(q=pop["q"][i], beta=pop["beta"][i] * galsim.radians)
        dx, dy = pop["offset"][i] * PIXEL_SCALE
        stamps = []
        for profile, radius in ((galsim.DeVaucouleurs, pop["r_bulge"][i]), (galsim.Exponential, pop["r_disc"][i])):
            gal = profile(half_light_radius=max(radius, 0.05), gsparams=gsp).shear(shear).shift(dx, dy)
            stamps.append(galsim.Convolve(gal, psf).drawImage(nx=size, ny=size, scale=PIXEL_SCALE).array)
        # Band fluxes in nanomaggies (Legacy Survey image units): 1 maggie = 1e9 nanomaggies.
        fb = _band_maggies(pop["redshift"][i : i + 1], pop["bulge"][i : i + 1])[0] * 1e9
        fd = _band_maggies(pop["redshift"][i : i + 1], pop["disc"][i : i + 1])[0] * 1e9
        noise = sigma * rng.standard_normal((size, size, 3), dtype=np.float32)
        out[k] = stamps[0][:, :, None] * fb + stamps[1][:, :, None] * fd + noise
    return out


def render_images(pop: dict[str, np.ndarray], cfg: SurveyConfig) -> np.ndarray:
    n = pop["redshift"].size
    step = max(1, -(-n // (4 * max(cfg.processes, 1))))
    tasks = [(pop, cfg.image_size, cfg.seed, lo, min(lo + step, n)) for lo in range(0, n, step)]
    if cfg.processes > 1:
        with multiprocessing.get_context("fork").Pool(cfg.processes) as pool:
            blocks = pool.map(_render_images, tasks)
    else:
        blocks = [_render_images(t) for t in tasks]
    return np.concatenate(blocks)


# -- the file --------------------------------------------------------------------------------------------


def _take(pop: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in pop.items()}


def secure_population(cfg: SurveyConfig) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float | int]]:
    """cfg.n_galaxies galaxies whose spectra give a secure redshift, their spectra, and the selection's numbers.

    Candidates are drawn in batches sized from the kept fraction so far; each batch's spectra are rendered and
    fitted, and the first n_galaxies that pass, in draw order, are kept (deterministic for a seed)."""
    rest_wave, flux = templates()
    wave = wavelength_grid()
    pops, spectra, n_kept, n_fitted, stream = [], [], 0, 0, 0
    fraction = 0.65  # a guess just below the 0.67 measured at 25 (default noise), so one batch usually suffices
    select = cfg.min_delta_chi2 > 0
    while n_kept < cfg.n_galaxies:
        want = cfg.n_galaxies - n_kept
        n_draw = max(int(np.ceil(want / max(fraction, 0.05) * 1.05)), 16) if select else want
        pop = sample_population(cfg, n_draw, stream)
        spec, sigma = render_spectra(pop, cfg, np.random.default_rng([cfg.seed, 1, stream]))
        if select:
            fit = fit_redshifts(spec, sigma, wave, rest_wave, flux, FIT_ZGRID, block=FIT_BLOCK)
            passed = np.flatnonzero(fit.delta_chi2 > cfg.min_delta_chi2)
        else:
            passed = np.arange(n_draw)
        n_fitted += n_draw
        n_kept += passed.size
        fraction = n_kept / n_fitted
        rows = passed[:want]
        pops.append(_take(pop, rows))
        spectra.append(spec[rows])
        stream += 1
        log.info("selection: %d of %d candidates so far give a secure redshift (delta-chi^2 > %g)", n_kept, n_fitted,
                 cfg.min_delta_chi2)
    pop = {k: np.concatenate([p[k] for p in pops]) for k in pops[0]}
    selection = {"min_delta_chi2": float(cfg.min_delta_chi2), "candidates": n_fitted, "kept_fraction": fraction}
    return pop, np.concatenate(spectra), selection


def simulate(cfg: SurveyConfig) -> SimulatedSurvey:
    """All columns of the survey, in file order, with a `targetids` column and ~1% all-zero spectra, and the
    selection's attributes."""
    pop, spectra, selection = secure_population(cfg)
    rng = np.random.default_rng([cfg.seed, 1])
    dead = rng.uniform(size=cfg.n_galaxies) < cfg.zero_spectrum_fraction
    spectra[dead] = 0.0  # fibres that were not assigned or failed: the valid-row filter's work
    images = render_images(pop, cfg)
    targetids = 39627000000000000 + np.sort(rng.choice(10**9, cfg.n_galaxies, replace=False)).astype(np.int64)
    columns = {
        "images": images,
        "spectra": spectra,
        "redshifts": pop["redshift"].astype(np.float32),
        "targetids": targetids,
    }
    attrs = {"simulator": "astroclip_eval.demo.simulate", **{f"selection_{k}": v for k, v in selection.items()}}
    return SimulatedSurvey(columns, attrs, catalogues(pop, targetids, cfg.seed))


def write_survey(path: str | os.PathLike, survey: SimulatedSurvey, n_groups: int) -> None:
    """Write the columns as groups "0".."n_groups-1" of near-equal size, in the published layout, atomically, with
    the survey's attributes on the file."""
    columns = survey.columns
    n = columns["redshifts"].shape[0]
    bounds = np.linspace(0, n, n_groups + 1).astype(int)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for g in range(n_groups):
            grp = f.create_group(str(g))
            for name in COLUMNS:
                grp.create_dataset(name, data=columns[name][bounds[g] : bounds[g + 1]])
        f.attrs.update(survey.attrs)

