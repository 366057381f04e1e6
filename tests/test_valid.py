"""Valid rows against a hand-built file with every kind of invalid row."""

import h5py
import numpy as np
from conftest import write_groups

from astroclip_eval.io.data import Survey
from astroclip_eval.tasks.valid import reason_masks, valid_rows


def test_each_invalid_kind(tmp_path):
    path = tmp_path / "s.h5"
    write_groups(path, [20, 20])  # validation rows: local rows 16..19 of each group
    with h5py.File(path, "a") as f:
        spectra0, z0 = f["0/spectra"], f["0/redshifts"]
        spectra0[16] = 0.0  # all-zero spectrum (valid row 0)
        row = spectra0[17]
        row[100] = np.nan  # one NaN (valid row 1)
        spectra0[17] = row
        z0[18] = 0.85  # beyond z_max (valid row 2)
        spectra1, z1 = f["1/spectra"], f["1/redshifts"]
        z1[16] = -0.01  # below z_min (valid row 4)
        row = spectra1[17]
        row[5] = np.inf  # infinite flux and out of range too (valid row 5)
        spectra1[17] = row
        z1[17] = 0.9
        z1[18] = 0.8  # exactly z_max: kept (valid row 6)
        z1[19] = np.nan  # NaN redshift (valid row 7)
    with Survey(path) as s:
        indices, summary = valid_rows(s, 0.0, 0.8, chunk_rows=3)
    assert indices.dtype == np.int64
    assert indices.tolist() == [3, 6]
    assert summary["n_rows"] == 8 and summary["n_valid"] == 2 and summary["n_invalid"] == 6
    assert summary["invalid_by_reason"] == {"zero_spectrum": 1, "nonfinite_spectrum": 2, "redshift_out_of_range": 4}


def test_reason_masks_match_their_definition_on_awkward_rows():
    rng = np.random.default_rng(5)
    spectra = rng.normal(size=(40, 7781)).astype(np.float32)
    spectra[0] = 0.0
    spectra[1] = np.nan  # all NaN: zero (nothing but 0/NaN) and non-finite
    spectra[2] = 0.0
    spectra[2, 10] = np.nan  # zeros and one NaN
    spectra[3] = 0.0
    spectra[3, 5] = np.inf  # zeros and one inf: not zero, non-finite
    spectra[4] = 0.0
    spectra[4, 7780] = 1e-45  # one subnormal bin is still signal
    spectra[5] = -np.inf
    z = rng.uniform(-0.1, 1.0, 40)
    masks = reason_masks(spectra, z, 0.0, 0.8)
    expected_zero = np.array([not any(v != 0 and not np.isnan(v) for v in row) for row in spectra])
    expected_nonfinite = np.array([not all(np.isfinite(v) for v in row) for row in spectra])
    np.testing.assert_array_equal(masks["zero_spectrum"], expected_zero)
    np.testing.assert_array_equal(masks["nonfinite_spectrum"], expected_nonfinite)
    assert masks["zero_spectrum"][:6].tolist() == [True, True, True, False, False, False]
