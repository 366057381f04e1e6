"""The full-size check's file: the published shape, a known set of invalid rows, nothing stored for train rows."""

import h5py
import numpy as np
from tiled import group_sizes, write_tiled  # benchmarks/tiled.py

from astroclip_eval.io.data import Survey
from astroclip_eval.tasks.valid import valid_rows


def source(n: int = 40, size: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    spectra = rng.normal(1.0, 0.1, (n, 7781)).astype(np.float32)
    spectra[3] = 0.0  # an invalid source galaxy is never repeated
    z = np.linspace(0.05, 0.9, n).astype(np.float32)  # the last few are above 0.8: never repeated either
    return {"images": rng.normal(size=(n, size, size, 3)).astype(np.float32), "spectra": spectra, "redshifts": z}


def test_group_sizes_give_the_published_validation_count():
    sizes = group_sizes(39_599)
    assert len(sizes) == 10 and max(sizes) - min(sizes) <= 5
    assert sum(n - int(0.8 * n) for n in sizes) == 39_599


def test_tiled_file_has_the_requested_rows_and_invalid_ones(tmp_path):
    src = source()
    path = tmp_path / "survey.h5"
    keep = (0, 5, 300)
    write_tiled(path, src, n_valid=503, n_zero=7, n_high_z=4, keep=keep, seed=2)
    with Survey(path) as survey:
        assert survey.n_rows("valid") == 503
        spectra = survey.read("valid", "spectra", 0, 503)
        z = survey.read("valid", "redshifts", 0, 503)
        images = survey.read("valid", "images", 0, 503)
        assert not survey.read("train", "spectra", 0, 10).any()  # train rows were never written
        assert valid_rows(survey, 0.0, 0.8)[0].size == 503 - 11
    zero = np.flatnonzero(spectra.max(axis=1) == 0)
    high = np.flatnonzero(z > 0.8)
    assert zero.size == 7 and high.size == 4 and not set(zero) & set(high) and not set(keep) & (set(zero) | set(high))
    # every other row is a valid source galaxy: its image and spectrum come from the same source row
    good = np.flatnonzero((src["spectra"].max(axis=1) > 0) & (src["redshifts"] <= 0.8))
    for row in (0, 1, 250, 502):
        match = [s for s in good if np.array_equal(src["images"][s], images[row])]
        assert len(match) == 1 and np.array_equal(src["spectra"][match[0]], spectra[row])
    with h5py.File(path) as f:
        grp = f["0"]
        assert grp["images"].chunks == (1, 20, 20, 3) and grp["spectra"].chunks == (1, 7781)
        n = grp["images"].shape[0]
        assert grp["images"].id.get_storage_size() == (n - int(0.8 * n)) * 20 * 20 * 3 * 4  # only the validation tail
