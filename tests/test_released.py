"""The original AstroCLIP's released checkpoint: read without running its pickled code, embedded like the original
(goldens made by the original's own code on a real checkpoint of a tiny architecture), and refused in one line
wherever it holds something this loader does not implement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from astroclip_eval.checkpoints import promote
from astroclip_eval.io import structural
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import safe_load
from astroclip_eval.io.structural import Inert
from astroclip_eval.models import load
from astroclip_eval.models.released import ReleasedAstroCLIP, build

DATA = Path(__file__).parent / "data"
TINY, GOLDEN = DATA / "polymathic-tiny.ckpt", DATA / "polymathic-tiny-golden.npz"
CPU = torch.device("cpu")


def relative(ours: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """Per row: max |ours - golden| / max |golden|."""
    return np.abs(ours - golden).max(axis=1) / np.abs(golden).max(axis=1)


@pytest.mark.numeric
def test_embeddings_match_the_originals_goldens():
    golden = np.load(GOLDEN)
    model = load("auto", str(TINY), CPU, {}, where="models.paper.loader")
    assert isinstance(model, ReleasedAstroCLIP) and model.embedding_dim == 64 and model.image_crop == 144
    with torch.no_grad():
        image = model.embed_images(torch.from_numpy(golden["images"])).numpy()
        spectrum = model.embed_spectra(torch.from_numpy(golden["spectra"])).numpy()
        # the survey reader passes the 144-pixel band only (start round((152 - 144) / 2) = 4): the same embeddings
        band = model.embed_images(torch.from_numpy(golden["images"][:, 4:148, 4:148])).numpy()
        one_image = model.embed_images(torch.from_numpy(golden["images"][2:3])).numpy()
        one_spectrum = model.embed_spectra(torch.from_numpy(golden["spectra"][1:2])).numpy()  # the all-zero one
    assert (relative(image, golden["emb_img"]) < 1e-5).all()
    assert (relative(spectrum, golden["emb_sp"]) < 1e-5).all()
    np.testing.assert_array_equal(band, image)
    # a batch of one works (the original raises "IndexError: index 1 is out of bounds ...") and gives that row
    assert "IndexError" in str(golden["batch_of_one"])
    assert one_image.shape == (1, 64) and relative(one_image, golden["emb_img"][2:3])[0] < 1e-5
    assert one_spectrum.shape == (1, 64) and relative(one_spectrum, golden["emb_sp"][1:2])[0] < 1e-5


def test_reader_extracts_every_setting_from_the_pickled_modules():
    tree = structural.read(TINY)
    assert len(tree["state_dict"]) == 118 and tree["pytorch-lightning_version"] == "2.3.3"
    vit = tree["hyper_parameters"]["image_encoder"].state["_modules"]["backbone"]
    assert vit.path == "dinov2.models.vision_transformer.DinoVisionTransformer"
    assert (vit.state["embed_dim"], vit.state["num_heads"], vit.state["patch_size"]) == (64, 4, 12)
    # each storage is read once, shared by the state_dict tensor and the module's parameter
    proj = vit.state["_modules"]["patch_embed"].state["_modules"]["proj"].state["_parameters"]["weight"]
    assert proj.data_ptr() == tree["state_dict"]["image_encoder.backbone.patch_embed.proj.weight"].data_ptr()


class _Payload:
    """A pickle that runs a command and opens a file when unpickled the usual way."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def test_a_pickle_that_tries_to_run_code_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)},
                "hyper_parameters": {"image_encoder": _Payload(os.system, f"touch {marker}"),
                                     "spectrum_encoder": _Payload(open, str(marker), "w")}}, evil)
    tree = structural.read(evil)
    assert not marker.exists()
    assert isinstance(tree["hyper_parameters"]["image_encoder"], Inert)
    assert tree["hyper_parameters"]["image_encoder"].args == (f"touch {marker}",)  # recorded, not run
    with pytest.raises(UserError) as err:
        load("auto", str(evil), CPU, {}, where="models.x.loader")
    assert str(err.value).startswith(str(evil)) and "\n" not in str(err.value)
    assert not marker.exists()


def _standin(path: str) -> Inert:
    return type(path.rsplit(".", 1)[1], (Inert,), {"path": path})()


def _block(tree):
    vit = tree["hyper_parameters"]["image_encoder"].state["_modules"]["backbone"]
    return vit, vit.state["_modules"]["blocks"].state["_modules"]["1"].state["_modules"]["1"]


def _register_tokens(tree):
    _block(tree)[0].state["num_register_tokens"] = 4


def _swiglu(tree):
    _block(tree)[1].state["_modules"]["mlp"] = _standin("dinov2.layers.swiglu_ffn.SwiGLUFFNFused")


def _eps(tree):
    _block(tree)[1].state["_modules"]["norm2"].state["eps"] = 1e-5


def _tanh_gelu(tree):
    spec = tree["hyper_parameters"]["spectrum_encoder"].state["_modules"]["backbone"]
    spec.state["_modules"]["blocks"].state["_modules"]["0"].state["_modules"]["mlp"].state["_modules"]["activation"].state[
        "approximate"
    ] = "tanh"


@pytest.mark.parametrize("change,fragment", [
    (_register_tokens, "image_encoder.backbone.num_register_tokens: 4 register tokens"),
    (_swiglu, "image_encoder.backbone.blocks.1.1.mlp: class dinov2.layers.swiglu_ffn.SwiGLUFFNFused (expected layers.mlp.Mlp)"),
    (_eps, "image_encoder.backbone.blocks.1.1.norm2.eps: LayerNorm eps 1e-05 (expected 1e-06)"),
    (_tanh_gelu, "spectrum_encoder.backbone.blocks.0.mlp.activation.approximate: 'tanh' (expected 'none')"),
])
def test_what_is_not_implemented_is_refused_in_one_line(change, fragment):
    tree = structural.read(TINY)
    change(tree)
    with pytest.raises(UserError) as err:
        build(tree, TINY)
    message = str(err.value)
    assert message.startswith(f"{TINY}: ") and fragment in message and "\n" not in message


def test_promotion_records_the_architecture(tmp_path):
    ckpt, meta = tmp_path / "paper/astroclip_model.ckpt", tmp_path / "paper/astroclip_model.json"
    promote(TINY, ckpt, meta)
    info = json.loads(meta.read_text())
    assert info["architecture"] == "released" and info["lightning_version"] == "2.3.3" and info["epoch"] == 0
    assert ckpt.read_bytes() == TINY.read_bytes()
    assert load("auto", str(ckpt), CPU, {}).embedding_dim == 64


def _rewrite(source: Path, dest: Path, replace: dict[str, bytes], compress: set[str] = frozenset()) -> None:
    """A copy of a torch archive with some entries replaced (by the name's ending) or compressed."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        for info in src.infolist():
            data = next((v for k, v in replace.items() if info.filename.endswith(k)), src.read(info.filename))
            kind = zipfile.ZIP_DEFLATED if any(info.filename.endswith(k) for k in compress) else zipfile.ZIP_STORED
            out.writestr(info.filename, data, compress_type=kind)


def test_the_structural_reader_is_bounded(tmp_path):
    """What a few hundred crafted bytes could make it do, each refused in one line, quickly and in little memory:
    a dictionary key that is a tuple of 2^40 shared leaves (hashing it never ends), a list nested 200,000 deep, a
    storage that inflates from a compressed entry, and tensor views outside their storage."""
    import pickle

    base = tmp_path / "base.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, base)
    shared = ()
    for _ in range(40):
        shared = (shared, shared)
    body = pickle.dumps(shared, protocol=2)[2:-1]  # a few hundred bytes: each level refers to the one below twice
    hash_bomb = b"\x80\x02}" + body + b"K\x01s."  # {shared: 1}
    deep = b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."
    crafted = {"hashed": (hash_bomb, "a tuple of more than 1,000,000 members"),
               "deep": (deep, "nests deeper than 1000 levels")}
    for name, (data, _) in crafted.items():
        _rewrite(base, tmp_path / f"{name}.ckpt", {"/data.pkl": data})
    # In a process of its own, so that its time and peak memory are measured and a hang is a failure, not a stuck suite.
    probe = (
        "import json, resource, sys, time\n"
        "from astroclip_eval.io import structural\n"
        "from astroclip_eval.io.errors import UserError\n"
        "from astroclip_eval.io.files import safe_load\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "out = []\n"
        "for path in sys.argv[1:]:\n"
        "    for reader in (structural.read, safe_load):  # the released model's reader, and every other checkpoint's\n"
        "        t0 = time.perf_counter()\n"
        "        try:\n"
        "            reader(path)\n"
        "            out.append([path, 'read', 0])\n"
        "        except UserError as e:\n"
        "            out.append([path, str(e), time.perf_counter() - t0])\n"
        "grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "print(json.dumps({'results': out, 'grown_mib': grown}))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, *[str(tmp_path / f"{n}.ckpt") for n in crafted]],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.splitlines()[-1])
    assert len(report["results"]) == 2 * len(crafted) and report["grown_mib"] < 1024
    for path, message, seconds in report["results"]:
        fragment = crafted[Path(path).stem][1]
        assert message.startswith(path) and fragment in message and "\n" not in message and seconds < 10
    inflated = tmp_path / "inflated.ckpt"
    _rewrite(base, inflated, {"/data/0": bytes(64 * 2**20)}, compress={"/data/0"})  # 64 MiB in about 64 KiB
    assert inflated.stat().st_size < 2**20
    for reader in (structural.read, safe_load):  # torch.load would inflate it too
        with pytest.raises(UserError, match="entry .*/data/0 is compressed"):
            reader(inflated)
    for offset, size, stride in ((3, (2,), (1,)), (-1, (2,), (1,)), (0, (2, 2), (3, -1))):
        with pytest.raises(pickle.UnpicklingError):
            structural._rebuild_tensor(torch.zeros(4), offset, size, stride)
    assert structural._rebuild_tensor(torch.arange(4.0), 2, (2,), (1,)).tolist() == [2.0, 3.0]
