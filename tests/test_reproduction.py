"""The built-in loader for the reproduction's checkpoints: the goldens made by the reproduction's own code, dimensions
read from the shapes, and one clear line (nothing written) for every checkpoint it cannot embed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from reproduction_recipe import GOLDEN, checkpoint, recipe_rows, recipe_state_dict

from astroclip_eval.io.errors import UserError
from astroclip_eval.models import load
from astroclip_eval.models.reproduction import ReproductionAstroCLIP

CPU = torch.device("cpu")
# Rows 3 (all zeros) and 10 (constant 2.0) standardise to exact zeros: what the spectrum encoder then returns is its
# response to the rounding residue of InstanceNorm over a constant channel, amplified by 1/sqrt(1e-5), which depends
# on the CPU's vector kernels (measured: 1.4e-5 from the goldens with AVX2 kernels, 1.8e-3 with scalar ones).
DEGENERATE = [3, 10]


def save(path, state_dict) -> str:
    torch.save(checkpoint(state_dict, epoch=7, callbacks={}), path)
    return str(path)


@pytest.fixture(scope="module")
def golden_checkpoint(tmp_path_factory) -> str:
    return save(tmp_path_factory.mktemp("golden") / "astroclip-epoch=07-min.ckpt", recipe_state_dict(128, 128, seed=7))


@pytest.fixture(scope="module")
def golden_inputs() -> dict[str, np.ndarray]:
    rows = recipe_rows(5, 24)
    golden = np.load(GOLDEN)
    np.testing.assert_allclose(rows["images"].astype(np.float64).sum(axis=(1, 2, 3)), golden["image_sum"], rtol=1e-12)
    np.testing.assert_allclose(rows["spectra"].astype(np.float64).sum(axis=1), golden["spectrum_sum"], rtol=1e-12)
    assert (rows["targetids"] == golden["targetids"]).all() and (rows["redshifts"] == golden["redshifts"]).all()
    return rows


def test_recipe_weights_match_the_spec_check_sums():
    golden = np.load(GOLDEN)
    state = recipe_state_dict(128, 128, seed=7)
    assert len(state) == 335 and sum(v.dtype == torch.int64 for v in state.values()) == 53
    for key, expected in zip(golden["check_keys"], golden["check_sums"]):
        assert state[str(key)].double().sum().item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.numeric
def test_embeddings_match_the_goldens(golden_checkpoint, golden_inputs):
    golden = np.load(GOLDEN)
    model = load("auto", golden_checkpoint, CPU, {}, where="models.dim128.loader")
    assert isinstance(model, ReproductionAstroCLIP) and model.embedding_dim == 128 and model.image_crop == 96
    with torch.no_grad():
        image = model.embed_images(torch.from_numpy(golden_inputs["images"])).numpy()
        # the survey reader passes the 96-pixel crop band only: the same embeddings
        crop = torch.from_numpy(golden_inputs["images"][:, 28:124, 28:124])
        image_from_crop = model.embed_images(crop).numpy()
        spectrum = model.embed_spectra(torch.from_numpy(golden_inputs["spectra"])).numpy()
        one = model.embed_spectra(torch.from_numpy(golden_inputs["spectra"][5:6])).numpy()  # a batch of one
    np.testing.assert_allclose(image, golden["image_emb"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(image, image_from_crop)
    ordinary = [i for i in range(24) if i not in DEGENERATE]
    np.testing.assert_allclose(spectrum[ordinary], golden["spectrum_emb"][ordinary], rtol=0, atol=1e-5)
    np.testing.assert_allclose(one[0], golden["spectrum_emb"][5], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(spectrum[3], spectrum[10])  # the spec: an exact constant embeds like zeros
    np.testing.assert_allclose(spectrum[DEGENERATE], golden["spectrum_emb"][DEGENERATE], rtol=0, atol=5e-3)
    np.testing.assert_allclose(np.linalg.norm(spectrum, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dim,width", [(16, 128), (256, 256)])
def test_dimensions_come_from_the_shapes(tmp_path, dim, width):
    model = load("auto", save(tmp_path / "m.ckpt", recipe_state_dict(dim, width, seed=1)), CPU, {})
    assert model.embedding_dim == dim
    with torch.no_grad():
        out = model.embed_spectra(torch.ones(2, 7781) + torch.arange(7781.0) / 7781)
    assert out.shape == (2, dim)


def _broken(kind: str) -> dict:
    state = recipe_state_dict(16, 128, seed=1)
    if kind == "missing":
        for key in ("encoders.0.fc.0.bias", "encoders.0.layer1.0.bn1.weight"):
            del state[key]
    elif kind == "misshapen":
        state["encoders.0.layer2.0.conv2.weight"] = torch.zeros(128, 128, 5, 5)
    else:  # another model altogether
        state = {f"backbone.block{i}.weight": torch.zeros(3) for i in range(5)}
    return state


@pytest.mark.parametrize("kind,fragments", [
    ("missing", ["does not match the reproduction's AstroCLIP: 0 unexpected key(s) []", "2 missing key(s)",
                 "'encoders.0.fc.0.bias'"]),
    ("misshapen", ["1 misshapen key(s)", "D=16, H=128", "encoders.0.layer2.0.conv2.weight (128, 128, 5, 5) "
                   "(expected (128, 128, 3, 3))"]),
    ("unknown", ["does not match either built-in model", "5 unexpected key(s) ['backbone.block0.weight'",
                 "missing key(s)", "models.x.loader"]),
])
def test_bad_checkpoints_end_in_one_line_and_write_nothing(tmp_path, kind, fragments):
    path = save(tmp_path / "bad.ckpt", _broken(kind))
    with pytest.raises(UserError) as err:
        load("auto", path, CPU, {}, where="models.x.loader")
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    # through the embed step: one error line in its log, no output file
    out, log = tmp_path / "shard.pt", tmp_path / "embed.log"
    dataset = tmp_path / "none.h5"
    run = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", path, "--dataset", str(dataset),
         "--out", str(out), "--device", "cpu", "--model", "x", "--log", str(log)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1 and not out.exists() and "Traceback" not in run.stderr
    assert [line for line in log.read_text().splitlines() if "ERROR" in line][0].endswith(message)


def test_loader_options_are_refused(golden_checkpoint):
    with pytest.raises(UserError, match=r"models.dim128.loader_options: the built-in models take none"):
        load("auto", golden_checkpoint, CPU, {"crop": 3}, where="models.dim128.loader")
