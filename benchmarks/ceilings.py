"""What the demo's simulation allows for the galaxy property and morphology scores: the ceilings the README states
beside the measured numbers, so a low score is read right.

    python benchmarks/ceilings.py WORKDIR      # a directory where the demo ran (config/, data/demo/, cache/)

- Properties: the catalogue values are exact functions of what was simulated (no noise of their own), so the limit
  is the data's. Measured two ways on the validation split's valid rows: a fit of the simulator's own five templates
  to each spectrum at its catalogue redshift (non-negative least squares; the properties then follow from the fitted
  weights as the catalogue's do; only the fibre's share of the light is unknown to a spectrum, which limits the
  mass), and a supervised model on the spectra (gradient-boosted trees on the arcsinh of block-averaged spectra and
  the redshift, fitted on the train split's valid rows).
- Morphology: the votes' own noise. A classifier that knows every galaxy's true bulge fraction and axis ratio and
  answers with the larger vote probability, scored against the volunteers' majority on the same rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml
from scipy.optimize import nnls
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score

from astroclip_eval.demo.catalogues import edge_on_probability, properties, smooth_probability
from astroclip_eval.demo.simulate import SurveyConfig, secure_population, templates
from astroclip_eval.io.data import Survey, wavelength_grid
from astroclip_eval.io.files import load_indices

BLOCK = 16  # spectrum pixels averaged per feature (12.8 Angstrom)


def features(spectra: np.ndarray, z: np.ndarray) -> np.ndarray:
    n = (spectra.shape[1] // BLOCK) * BLOCK
    blocks = spectra[:, :n].reshape(len(spectra), -1, BLOCK).mean(axis=2)
    return np.column_stack([np.arcsinh(blocks), z])


def template_fit(spectra: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """The catalogue's properties from the five templates fitted to each spectrum at its redshift (NNLS)."""
    rest_wave, flux = templates()
    wave = wavelength_grid()
    weights = np.empty((len(z), len(flux)))
    for i in range(len(z)):
        design = np.stack([np.interp(wave / (1 + z[i]), rest_wave, t) for t in flux]) / (1 + z[i]) * 1e17
        weights[i] = nnls(design.T.astype(np.float64), spectra[i].astype(np.float64))[0]
    derived = properties({"redshift": z, "bulge": weights, "disc": np.zeros_like(weights)})
    derived["sSFR"] = np.log10(derived["AVG_SFR"]) - derived["LOG_MSTAR"]
    return derived


def file_order(path: Path) -> np.ndarray:
    """Every targetid in file order (groups in order), which is the simulator's order."""
    with h5py.File(path, "r") as f:
        return np.concatenate([f[g]["targetids"][()] for g in sorted(f, key=int)])


def main(work: Path) -> None:
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    pop, _, _ = secure_population(SurveyConfig(**cfg["simulate"]))
    survey_path = work / cfg["dataset"]["path"]
    position = {t: i for i, t in enumerate(file_order(survey_path).tolist())}
    split = {}
    with Survey(survey_path) as survey:
        for name, prefix in (("valid", ""), ("train", "train_")):
            rows = load_indices(str(work / f"cache/{prefix}valid_indices.pt"))
            table = pd.read_csv(work / f"cache/catalogues/{prefix}labels.csv", keep_default_na=False, na_values=[""])
            sim_rows = np.array([position[t] for t in survey.read(name, "targetids")[rows].tolist()])
            spectra = np.concatenate([survey.read(name, "spectra", int(r), int(r) + 1) for r in rows])
            z = survey.read(name, "redshifts")[rows]
            split[name] = (rows, table, sim_rows, features(spectra, z))
            if name == "valid":
                fitted = template_fit(spectra, z.astype(np.float64))
    print("| property or question | ceiling | how |")
    print("| --- | --- | --- |")
    (v_rows, v_table, v_sim, v_x), (t_rows, t_table, _, t_x) = split["valid"], split["train"]
    for name in cfg["properties"]:
        yt, yv = t_table[name].to_numpy(float)[t_rows], v_table[name].to_numpy(float)[v_rows]
        fit = HistGradientBoostingRegressor(max_iter=400, random_state=0).fit(t_x[np.isfinite(yt)], yt[np.isfinite(yt)])
        have = np.isfinite(yv)
        print(f"| {name} | R^2 {r2_score(yv[have], fit.predict(v_x[have])):.3f} | supervised on the spectra (trees) |")
        if name in fitted:
            good = have & np.isfinite(fitted[name])
            print(f"| {name} | R^2 {r2_score(yv[good], fitted[name][good]):.3f} (n = {good.sum():,}) "
                  "| template fit at the catalogue redshift |")
    bt, q = pop["bt"][v_sim], pop["q"][v_sim]
    best = {
        "smooth-or-featured": np.where(smooth_probability(bt) > 0.5, "smooth", "featured-or-disk"),
        "disk-edge-on": np.where(edge_on_probability(q, bt) > 0.5, "yes", "no"),
    }
    for name, guess in best.items():
        truth = v_table[name].to_numpy(object)[v_rows]
        have = np.array([isinstance(t, str) for t in truth])
        accuracy = np.mean(guess[have] == truth[have])
        print(f"| {name} | accuracy {accuracy:.3f} (n = {have.sum():,}) | true bulge fraction and axis ratio, vote noise only |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
