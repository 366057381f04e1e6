"""The reader: the published split rule, column and row selection, crops, and clear errors."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import write_groups

from astroclip_eval.io.data import Survey, split_sizes, wavelength_grid
from astroclip_eval.io.errors import UserError


def test_wavelength_grid_is_desi():
    w = wavelength_grid()
    assert w.shape == (7781,) and w[0] == 3600.0 and w[-1] == 9824.0
    assert np.allclose(np.diff(w), 0.8)


def test_split_rule_row_bookkeeping(grouped_file):
    path, cols = grouped_file
    # groups of 10, 7, 5 rows: int(0.8 n) = 8, 5, 4 train rows; validation = the tails in group order.
    assert [split_sizes(n) for n in (10, 7, 5)] == [(8, 2), (5, 2), (4, 1)]
    expected_valid = np.array([8, 9, 15, 16, 21])
    expected_train = np.array([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 17, 18, 19, 20])
    with Survey(path) as s:
        assert s.layout == "published"
        assert s.n_rows("valid") == 5 and s.n_rows("train") == 17
        assert np.array_equal(s.read("valid", "targetids"), cols["targetids"][expected_valid])
        assert np.array_equal(s.read("train", "targetids"), cols["targetids"][expected_train])
        # A range that crosses a group boundary.
        assert np.array_equal(s.read("valid", "redshifts", 1, 4), cols["redshifts"][[9, 15, 16]])
        assert np.array_equal(s.read("valid", "spectra", 2, 3), cols["spectra"][[15]])


def test_chunks_rows_and_crop(grouped_file):
    path, cols = grouped_file
    with Survey(path) as s:
        blocks = list(s.iter_chunks("valid", ["redshifts", "images"], chunk_rows=2, crop=8))
        assert [lo for lo, _ in blocks] == [0, 2, 4]
        images = np.concatenate([b["images"] for _, b in blocks])
        assert images.shape == (5, 8, 8, 3)
        assert np.array_equal(images, cols["images"][[8, 9, 15, 16, 21], 4:12, 4:12, :])
        picked = s.read_rows("valid", "redshifts", [4, 0, 4, 2])
        assert np.array_equal(picked, cols["redshifts"][[21, 8, 21, 15]])


def test_flat_file_is_all_validation(tmp_path):
    path = tmp_path / "flat.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f["image"] = rng.normal(size=(6, 12, 12, 3)).astype(np.float32)
        f["spectrum"] = rng.normal(size=(6, 7781)).astype(np.float32)
        f["redshift"] = np.linspace(0, 0.5, 6).astype(np.float32)
        f["targetid"] = np.arange(6)
    with Survey(path) as s:
        assert s.layout == "flat" and s.n_rows("valid") == 6 and s.n_rows("train") == 0
        assert np.allclose(s.read("valid", "redshifts"), np.linspace(0, 0.5, 6))


def _expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(UserError) as err:
        Survey(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_reader_errors(tmp_path):
    _expect_error(tmp_path / "missing.h5", "not found")
    (tmp_path / "text.h5").write_text("not hdf5")
    _expect_error(tmp_path / "text.h5", "not an HDF5 file")
    write_groups(tmp_path / "whole.h5", [10])
    data = (tmp_path / "whole.h5").read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError, match="truncated.h5"):
        with Survey(tmp_path / "truncated.h5") as s:
            s.read("valid", "spectra")
    write_groups(tmp_path / "short.h5", [10], spectrum_length=7000)
    _expect_error(tmp_path / "short.h5", "7781")
    write_groups(tmp_path / "nogroup.h5", [10])
    with h5py.File(tmp_path / "nogroup.h5", "a") as f:
        del f["0/redshifts"]
    _expect_error(tmp_path / "nogroup.h5", "missing dataset '0/redshifts'")
    write_groups(tmp_path / "counts.h5", [10])
    with h5py.File(tmp_path / "counts.h5", "a") as f:
        del f["0/targetids"]
        f["0/targetids"] = np.arange(9)
    _expect_error(tmp_path / "counts.h5", "row counts disagree", "targetids=9")
    write_groups(tmp_path / "small.h5", [10], image_size=16)
    with Survey(tmp_path / "small.h5") as s, pytest.raises(UserError, match="smaller than the centre crop of 32"):
        s.read("valid", "images", crop=32)


def _replace(path: Path, name: str, data: np.ndarray) -> None:
    with h5py.File(path, "a") as f:
        del f[name]
        f[name] = data


def test_column_dtypes_are_checked_where_the_file_is_opened(tmp_path):
    """float16 and float64 model inputs are read as float32 (what the models compute in); integer images, string
    spectra, 2-D redshifts and float targetids end in one line naming the file, the dataset and what was expected."""
    cols = write_groups(tmp_path / "wide.h5", [10])
    _replace(tmp_path / "wide.h5", "0/spectra", cols["spectra"].astype(np.float64))
    _replace(tmp_path / "wide.h5", "0/images", cols["images"].astype(np.float16))
    with Survey(tmp_path / "wide.h5") as s:
        spectra, images = s.read("valid", "spectra"), s.read("valid", "images", crop=8)
        assert spectra.dtype == images.dtype == np.float32
        np.testing.assert_array_equal(spectra, cols["spectra"][8:])  # float32 -> float64 -> float32 is exact
        np.testing.assert_array_equal(images, cols["images"][8:, 4:12, 4:12].astype(np.float16).astype(np.float32))
    for name, data, fragment in (
        ("0/images", (cols["images"] * 50).astype(np.uint8), "'images' holds uint8, expected floating point"),
        ("0/spectra", np.full((10, 7781), b"x", dtype="S1"), "'spectra' holds |S1, expected floating point"),
        ("0/redshifts", cols["redshifts"][:, None], "redshifts (10, 1) and targetids (10,), expected one value per row"),
        ("0/targetids", cols["targetids"].astype(np.float32), "'targetids' holds float32, expected integers"),
    ):
        write_groups(tmp_path / "bad.h5", [10])
        _replace(tmp_path / "bad.h5", name, data)
        _expect_error(tmp_path / "bad.h5", "group '0'", fragment)


@pytest.mark.parametrize("size,crop", [(19, 16), (21, 16), (20, 16), (16, 16)])
def test_one_centre_crop_for_the_reader_and_the_models(tmp_path, size, crop):
    """Odd margins (3 and 5 pixels) too: the reader's hyperslab is the window every model's own crop takes, with
    torchvision's CenterCrop rounding (int(round(margin / 2)): 1.5 -> 2, 2.5 -> 2)."""
    import torch

    from astroclip_eval.io.crop import centre_crop, crop_origin

    cols = write_groups(tmp_path / "odd.h5", [10], image_size=size)
    expected = int(round((size - crop) / 2.0))  # torchvision.transforms.functional.center_crop's origin
    assert crop_origin(size, size, crop) == (expected, expected)
    with Survey(tmp_path / "odd.h5") as s:
        read = s.read("valid", "images", crop=crop)
        whole = s.read("valid", "images")
    np.testing.assert_array_equal(read, cols["images"][8:, expected : expected + crop, expected : expected + crop])
    np.testing.assert_array_equal(read, centre_crop(whole, crop))
    np.testing.assert_array_equal(read, centre_crop(torch.from_numpy(whole), crop).numpy())
