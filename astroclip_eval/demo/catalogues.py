"""The demo's value-added catalogues, made from what the simulator drew, in the layouts of the real ones:

- a PROVABGS-like property catalogue keyed by TARGETID with RA, DEC (sky positions assigned here), LOG_MSTAR,
  Z_MW, TAGE_MW, AVG_SFR and the observed AB magnitudes MAG_G, MAG_R, MAG_Z (the AstroCLIP paper's row filter reads
  them);
- a Galaxy-Zoo-DECaLS-like vote table keyed by ra, dec only (positions jittered by ~0.1 arcsec, some galaxies
  missing, decoys 1 arcsec away and elsewhere) with binomial volunteer votes for smooth-or-featured (from the bulge
  fraction) and disk-edge-on (from the disc's axis ratio).

Each template weight is a mass of stars formed: the kcorrect templates are the spectra of one solar mass formed at
10 pc, so a weight on the unit-normalised template is (weight / normalisation) solar masses at 10 pc. The template
file's remaining-mass fractions, metallicities and formed-in-the-last-300-Myr / 1-Gyr fractions then give current
stellar mass, mass-weighted metallicity and the recent star-formation rate. Ages are a three-bin approximation
(0.15 Gyr, 0.65 Gyr, and halfway between 1 Gyr and the age of the universe at the galaxy's redshift)."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import pandas as pd

from astroclip_eval.demo.universe import cosmology, kcorrect_templates

PROVABGS_FILE = "provabgs.hdf5"
GALAXY_ZOO_FILE = "gz_decals.csv"
GZ_COVERAGE = 0.85  # share of galaxies with a Galaxy Zoo entry
DECOY_FRACTION = 0.05  # galaxies that also get a decoy entry 1 arcsec away (not a match at 0.5 arcsec)
N_FIELD_DECOYS = 200  # entries far from any galaxy


@lru_cache(maxsize=1)
def _template_quantities() -> dict[str, np.ndarray]:
    t = kcorrect_templates()
    wave, flux = np.asarray(t.wave, np.float64), np.asarray(t.flux, np.float64)
    return {
        "norm": flux[:, (wave > 5000) & (wave < 6000)].mean(axis=1),  # as simulate.templates() normalises
        "mremain": np.asarray(t.mremain, np.float64),
        "mets": np.asarray(t.mets, np.float64),
        "m300": np.asarray(t.m300, np.float64),
        "m1000": np.asarray(t.m1000, np.float64),
    }


def properties(pop: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LOG_MSTAR (log10 solar masses), Z_MW, TAGE_MW (Gyr), AVG_SFR (solar masses per year, last 300 Myr)."""
    q = _template_quantities()
    cosmo = cosmology()
    z = pop["redshift"]
    to_10pc = (cosmo.luminosity_distance(z).to("pc").value / 10.0) ** 2  # undo the dimming the weights carry
    formed = (pop["bulge"] + pop["disc"]) * to_10pc[:, None] / q["norm"]  # solar masses formed per template
    current = formed * q["mremain"]
    old_age = 0.5 * (1.0 + cosmo.age(z).value)
    ages = np.stack([0.15 * q["m300"], 0.65 * (q["m1000"] - q["m300"])], 0).sum(0)  # per template, young part
    age = (formed * ages).sum(1) + (formed * (1 - q["m1000"])).sum(1) * old_age
    return {
        "LOG_MSTAR": np.log10(current.sum(1)),
        "Z_MW": (current * q["mets"]).sum(1) / current.sum(1),
        "TAGE_MW": age / formed.sum(1),
        "AVG_SFR": (formed * q["m300"]).sum(1) / 3e8,
    }


def sky_positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere within RA 150-190 deg, Dec 0-30 deg (a DESI-like patch)."""
    ra = rng.uniform(150.0, 190.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(0.0, np.sin(np.radians(30.0)), n)))
    return ra, dec


def _offset(ra: np.ndarray, dec: np.ndarray, arcsec: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = arcsec / 3600.0
    return ra + d * np.cos(angle) / np.cos(np.radians(dec)), dec + d * np.sin(angle)


def smooth_probability(bt: np.ndarray) -> np.ndarray:
    """A volunteer's chance to answer smooth (else featured-or-disk, 2% artifact on top), from the bulge fraction."""
    return 0.05 + 0.9 * bt


def edge_on_probability(q: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """A volunteer's chance to answer that a disc is edge-on: a thin projected disc (axis ratio below ~0.42), diluted
    by the bulge's share of the light."""
    return 0.05 + 0.9 * (1 - bt) / (1 + np.exp((q - 0.42) / 0.05))


def _question(
    rng: np.random.Generator, n_votes: np.ndarray, p: np.ndarray, prefix: str, answers: list[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    counts = np.stack([rng.multinomial(m, pi) for m, pi in zip(n_votes, p)]) if n_votes.size else np.zeros((0, len(answers)))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = counts / n_votes[:, None]
    out = {f"{prefix}_total-votes": n_votes}
    for i, answer in enumerate(answers):
        out[f"{prefix}_{answer}"] = counts[:, i]
        out[f"{prefix}_{answer}_fraction"] = fraction[:, i]
        out[f"{prefix}_{answer}_debiased"] = fraction[:, i]  # no redshift debiasing to undo in a simulation
    return out, counts


def catalogues(pop: dict[str, np.ndarray], targetids: np.ndarray, seed: int) -> dict[str, pd.DataFrame]:
    """{PROVABGS_FILE: property table, GALAXY_ZOO_FILE: vote table} for the galaxies of the survey file."""
    rng = np.random.default_rng([seed, 2])
    n = targetids.size
    ra, dec = sky_positions(rng, n)
    mags = {f"MAG_{band}": -2.5 * np.log10(pop["maggies"][:, j]) for j, band in enumerate("GRZ")}
    provabgs = pd.DataFrame({"TARGETID": targetids, "RA": ra, "DEC": dec, **properties(pop), **mags})
    # Galaxy Zoo: a share of the galaxies, jittered positions, votes from the morphology that was drawn.
    listed = np.flatnonzero(rng.uniform(size=n) < GZ_COVERAGE)
    n_votes = np.where(rng.uniform(size=listed.size) < 0.05, rng.integers(0, 3, listed.size), rng.poisson(25, listed.size))
    bt = pop["bt"][listed]
    p_smooth = smooth_probability(bt)
    sof, counts = _question(
        rng,
        n_votes,
        np.stack([p_smooth * 0.98, (1 - p_smooth) * 0.98, np.full(bt.size, 0.02)], 1),
        "smooth-or-featured",
        ["smooth", "featured-or-disk", "artifact"],
    )
    p_yes = edge_on_probability(pop["q"][listed], bt)
    deo, _ = _question(rng, counts[:, 1].astype(np.int64), np.stack([p_yes, 1 - p_yes], 1), "disk-edge-on", ["yes", "no"])
    g_ra, g_dec = _offset(
        ra[listed], dec[listed], np.abs(rng.normal(0, 0.1, listed.size)), rng.uniform(0, 2 * np.pi, listed.size)
    )
    gz = pd.DataFrame({"ra": g_ra, "dec": g_dec, **sof, **deo})
    decoy = listed[rng.uniform(size=listed.size) < DECOY_FRACTION]
    d_ra, d_dec = _offset(ra[decoy], dec[decoy], np.full(decoy.size, 1.0), rng.uniform(0, 2 * np.pi, decoy.size))
    f_ra, f_dec = sky_positions(rng, N_FIELD_DECOYS)
    decoys = gz.sample(decoy.size + N_FIELD_DECOYS, replace=True, random_state=seed).reset_index(drop=True)
    decoys["ra"], decoys["dec"] = np.concatenate([d_ra, f_ra]), np.concatenate([d_dec, f_dec])
    gz = pd.concat([gz, decoys], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    gz.insert(0, "iauname", [_iau_name(a, b) for a, b in zip(gz["ra"], gz["dec"])])
    return {PROVABGS_FILE: provabgs, GALAXY_ZOO_FILE: gz}


def _iau_name(ra: float, dec: float) -> str:
    h, rem = divmod(ra / 15.0 * 3600.0, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "+" if dec >= 0 else "-"
    d, rem = divmod(abs(dec) * 3600.0, 3600.0)
    dm, ds = divmod(rem, 60.0)
    return f"J{int(h):02d}{int(m):02d}{s:05.2f}{sign}{int(d):02d}{int(dm):02d}{ds:04.1f}"


def write_catalogues(directory: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> None:
    """Each table atomically, in its real counterpart's format: an astropy HDF5 table and a CSV."""
    from astropy.table import Table

    from astroclip_eval.io.atomic import atomic_path, write_csv

    for name, table in tables.items():
        dest = os.path.join(directory, name)
        if name.endswith(".csv"):
            write_csv(dest, table)
        else:
            with atomic_path(dest) as tmp:
                Table.from_pandas(table).write(tmp, format="hdf5", path="data", overwrite=True)
