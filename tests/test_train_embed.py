"""A short training run, its checkpoint files, and embeddings: shape, order, normalisation, determinism."""

import csv
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT

from astroclip_eval.checkpoints import select_best, stored_score
from astroclip_eval.demo import simulate as sim
from astroclip_eval.demo.train import TrainConfig, train
from astroclip_eval.embed import embed_split, merge_shards, prefetch, shard_rows
from astroclip_eval.io.data import Survey
from astroclip_eval.io.device import resolve_device
from astroclip_eval.io.errors import UserError
from astroclip_eval.models import load


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    cfg = sim.SurveyConfig(n_galaxies=200, image_size=24, processes=1, seed=3)
    survey = tmp / "survey.h5"
    sim.write_survey(survey, sim.simulate(cfg), cfg.n_groups)
    run = train(
        survey,
        tmp / "astroclip_ckpt_tiny",
        TrainConfig(
            embedding_dim=8, max_epochs=3, batch_size=32, lr=2e-3, weight_decay=0.05, image_crop=16, seed=0,
            spectrum_view_weight=1.0, z_min=0.0, z_max=0.8,
        ),
    )
    return survey, run


def test_checkpoint_names_and_losses(trained):
    _, run = trained
    names = sorted(p.name for p in run.glob("*.ckpt"))
    mins = [n for n in names if n.endswith("-min.ckpt")]
    assert "astroclip-epoch=02-last.ckpt" in names
    assert len(mins) == 2 and all(n.startswith("astroclip-epoch=0") for n in mins)
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = {int(r["epoch"]): float(r["val/loss"]) for r in rows if r.get("val/loss")}
    assert sorted(val) == [0, 1, 2]
    # The two kept '-min' files are the two best epochs, and each stores its own epoch's score.
    best_two = sorted(val, key=val.get)[:2]
    assert sorted(int(n[16:18]) for n in mins) == sorted(best_two)
    for n in mins:
        s = stored_score(run / n)
        assert s.monitor == "val/loss" and s.score == pytest.approx(val[s.epoch], rel=1e-5)
    assert select_best(run).epoch == best_two[0]


def test_a_lightning_checkpoint_loads_without_lightning(trained):
    """What the demo's training writes (Lightning's checkpoint, the settings saved by save_hyperparameters) is read
    by the promote and embed steps in a process that never imports Lightning (4.9 s of imports a step)."""
    _, run = trained
    probe = (
        "import sys; from astroclip_eval.io.files import safe_load; from astroclip_eval.models import load; "
        f"ckpt = safe_load({str(select_best(run).path)!r}); "
        "assert type(ckpt['hyper_parameters']) is dict and ckpt['hyper_parameters']['embedding_dim'] == 8; "
        f"load('auto', {str(select_best(run).path)!r}, 'cpu', {{}}); "
        "assert not any(m.startswith(('pytorch_lightning', 'lightning')) for m in sys.modules), 'Lightning imported'"
    )
    run_probe = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run_probe.returncode == 0, run_probe.stderr[-2000:]


def test_embeddings_shape_order_normalisation(trained):
    survey_path, run = trained
    model = load("auto", str(select_best(run).path), torch.device("cpu"), {})
    with Survey(survey_path) as survey:
        n = survey.n_rows("valid")
        images, spectra = embed_split(model, survey, "valid", batch_size=7, device=torch.device("cpu"), progress=False)
        assert images.shape == spectra.shape == (n, 8) and images.dtype == torch.float32
        np.testing.assert_allclose(images.norm(dim=1).numpy(), 1.0, rtol=1e-5)
        np.testing.assert_allclose(spectra.norm(dim=1).numpy(), 1.0, rtol=1e-5)
        # Row i is validation row i: embed rows 5 and 31 on their own.
        rows = [5, 31]
        with torch.no_grad():
            direct_img = model.embed_images(torch.from_numpy(survey.read_rows("valid", "images", rows)))
            direct_spec = model.embed_spectra(torch.from_numpy(survey.read_rows("valid", "spectra", rows)))
        np.testing.assert_allclose(images[rows].numpy(), direct_img.numpy(), atol=1e-5)
        np.testing.assert_allclose(spectra[rows].numpy(), direct_spec.numpy(), atol=1e-5)
        again, _ = embed_split(model, survey, "valid", batch_size=7, device=torch.device("cpu"), progress=False)
        assert torch.equal(images, again)  # bit-identical on CPU


def test_an_odd_margin_gives_the_embed_step_and_a_direct_call_one_window(trained, tmp_path):
    """19-pixel cut-outs for a 16-pixel crop (a margin of 3): the embed step reads the crop's hyperslab, a direct call
    crops whole images in the model; the windows are the same, so the embeddings are bitwise equal."""
    from conftest import write_groups

    _, run = trained
    model = load("auto", str(select_best(run).path), torch.device("cpu"), {})
    write_groups(tmp_path / "odd.h5", [40], image_size=19)
    with Survey(tmp_path / "odd.h5") as survey:
        n = survey.n_rows("valid")
        images, _ = embed_split(model, survey, "valid", batch_size=n, device=torch.device("cpu"), progress=False)
        with torch.no_grad():
            direct = model.embed_images(torch.from_numpy(survey.read("valid", "images")))
    assert torch.equal(images, torch.nn.functional.normalize(direct.float(), dim=1))


def test_wrong_model_class_and_device(trained, tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}, "hyper_parameters": {"embedding_dim": 8}}, other)
    with pytest.raises(UserError, match="does not match either built-in model"):
        load("auto", str(other), torch.device("cpu"), {})
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback of a job given a GPU torch cannot use")
def test_a_gpu_job_without_cuda_in_torch_warns_with_the_cause_and_the_fix(monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # as SLURM sets it for a job given one GPU
    with caplog.at_level("WARNING"):
        assert resolve_device("auto").type == "cpu"
    message = caplog.records[-1].getMessage()
    assert "given GPU(s) 0" in message and f"torch {torch.__version__} is a CPU build" in message
    assert "install a CUDA build of torch" in message


def test_embedding_dimension_must_match_the_model_entry(trained, tmp_path):
    survey, run = trained
    ckpt = select_best(run).path
    out = tmp_path / "0-of-1.pt"
    base = [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", str(ckpt), "--dataset", str(survey),
            "--device", "cpu", "--out", str(out), "--model", "mine"]
    bad = subprocess.run([*base, "--expected-dim", "16"], capture_output=True, text=True, timeout=300)
    errors = [line for line in bad.stderr.splitlines() if "ERROR" in line]
    assert bad.returncode == 1 and len(errors) == 1 and "Traceback" not in bad.stderr
    assert "models.mine.embedding_dim: the config expects 16" in errors[0] and f"{ckpt} embeds into 8 dimensions" in errors[0]
    assert not out.exists()
    ok = subprocess.run([*base, "--expected-dim", "8"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert torch.load(out)["image"].shape[1] == 8


def test_non_finite_images_stop_the_embed_step_in_one_line(trained, tmp_path):
    """Images that are all NaN (a broken file) embed to NaN, which would sort as a perfect match: the embed step stops
    at the first block, names the model, the modality and the rows, and writes nothing."""
    import shutil

    import h5py

    from astroclip_eval.tasks.valid import spectrum_masks

    survey, run = trained
    broken = tmp_path / "survey.h5"
    shutil.copy(survey, broken)
    with h5py.File(broken, "r+") as f:
        for group in f.values():
            group["images"][...] = np.nan
    with Survey(broken) as s:
        first = s.read_rows("valid", "spectra", list(range(16)))
    zero, nonfinite = spectrum_masks(first)
    usable = np.flatnonzero(~(zero | nonfinite))
    out = tmp_path / "0-of-1.pt"
    bad = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", str(select_best(run).path), "--dataset",
         str(broken), "--device", "cpu", "--batch-size", "16", "--out", str(out), "--model", "mine"],
        capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in bad.stderr.splitlines() if "ERROR" in line]
    assert bad.returncode == 1 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert f"model mine: image embeddings of the valid split: {usable.size} rows with a usable spectrum are not finite " \
        f"in rows 0-15 (first rows {usable[:5].tolist()})" in errors[0]
    assert not out.exists()


def test_an_empty_split_stops_and_an_empty_shard_is_logged(trained, tmp_path):
    """A flat file has no train split: embedding it ends in one line saying why it was asked for. More shards than
    batches: the extra shard is empty, written as such, and the log says so."""
    import h5py

    survey, run = trained
    with Survey(survey) as s:
        cols = {c: s.read("valid", c) for c in ("images", "spectra", "redshifts", "targetids")}
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        for column, name in (("images", "image"), ("spectra", "spectrum"), ("redshifts", "redshift"), ("targetids", "targetid")):
            f[name] = cols[column]
    base = [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", str(select_best(run).path),
            "--dataset", str(flat), "--device", "cpu", "--model", "mine"]
    empty = subprocess.run([*base, "--split", "train", "--out", str(tmp_path / "t.pt")], capture_output=True, text=True,
                           timeout=300)
    errors = [line for line in empty.stderr.splitlines() if "ERROR" in line]
    assert empty.returncode == 1 and len(errors) == 1 and not (tmp_path / "t.pt").exists()
    assert f"{flat}: the train split has no rows; nothing to embed (protocols.run zero_shot and few_shot" in errors[0]
    # 40 rows, one batch of 64: shards are cut on batch boundaries, so the first of two is empty
    shard = subprocess.run([*base, "--batch-size", "64", "--shard", "0", "--shards", "2", "--out", str(tmp_path / "s.pt")],
                           capture_output=True, text=True, timeout=300)
    assert shard.returncode == 0, shard.stderr
    assert "embedding.shards: 2 shards for 1 batches of 64 rows; shard 0 is empty" in shard.stderr
    assert torch.load(tmp_path / "s.pt")["rows"].tolist() == [0, 0]


@pytest.mark.parametrize("n_rows,batch,shards", [(40, 7, 3), (41, 8, 5), (5, 8, 3), (64, 8, 8)])
def test_shards_tile_the_rows_on_batch_boundaries(n_rows, batch, shards):
    ranges = [shard_rows(n_rows, batch, i, shards) for i in range(shards)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n_rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(lo % batch == 0 for lo, _ in ranges)
    sizes = [hi - lo for lo, hi in ranges]
    assert max(sizes) - min(sizes) <= batch  # balanced to within one batch


def test_sharded_embeddings_are_bitwise_those_of_one_pass(trained, tmp_path):
    survey_path, run = trained
    model = load("auto", str(select_best(run).path), torch.device("cpu"), {})
    cpu = torch.device("cpu")
    with Survey(survey_path) as survey:
        n = survey.n_rows("valid")
        whole = embed_split(model, survey, "valid", 7, cpu, progress=False)
        paths = []
        for i in range(3):
            lo, hi = shard_rows(n, 7, i, 3)
            images, spectra = embed_split(model, survey, "valid", 7, cpu, start=lo, stop=hi, progress=False)
            paths.append(str(tmp_path / f"{i}-of-3.pt"))
            torch.save({"rows": torch.tensor([lo, hi]), "image": images, "spectrum": spectra, "device": "cpu",
                        "checkpoint_sha256": "ab" * 32}, paths[-1])
    merged = merge_shards(paths, n)
    assert torch.equal(merged[0], whole[0]) and torch.equal(merged[1], whole[1])
    assert [s["rows"] for s in merged[2]] == [list(shard_rows(n, 7, i, 3)) for i in range(3)]
    assert {s["device"] for s in merged[2]} == {"cpu"}
    with pytest.raises(UserError, match="expected a shard starting at row"):
        merge_shards([paths[0], paths[2]], n)
    with pytest.raises(UserError, match=f"the split has {n} rows"):
        merge_shards(paths[:2], n)
    assert {s["checkpoint_sha256"] for s in merged[2]} == {"ab" * 32}
    torch.save({**torch.load(paths[1]), "checkpoint_sha256": "cd" * 32}, paths[1])  # a shard of another checkpoint
    with pytest.raises(UserError, match=r"1-of-3\.pt: embedded by checkpoint cdcdcdcdcdcd, .*0-of-3\.pt by "
                                        r"abababababab: shards of two checkpoints"):
        merge_shards(paths, n)


def test_bf16_embeddings_are_close_to_float32(trained):
    survey_path, run = trained
    model = load("auto", str(select_best(run).path), torch.device("cpu"), {})
    with Survey(survey_path) as survey:
        full = embed_split(model, survey, "valid", 16, torch.device("cpu"), progress=False)
        half = embed_split(model, survey, "valid", 16, torch.device("cpu"), precision="bf16", progress=False)
    for a, b in zip(full, half):
        cosine = (a * b).sum(dim=1)
        assert cosine.min() > 0.98 and not torch.equal(a, b)
    with pytest.raises(UserError, match="embedding.precision"):
        with Survey(survey_path) as survey:
            embed_split(model, survey, "valid", 16, torch.device("cpu"), precision="fp8", progress=False)


@pytest.mark.timeout(60)
def test_prefetch_keeps_order_and_reraises_read_errors():
    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))

    def failing():
        yield 1
        raise OSError("truncated block")

    got = []
    with pytest.raises(OSError, match="truncated block"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]
    early = prefetch(iter(range(1000)), depth=1)
    assert next(early) == 0
    early.close()  # a consumer that stops early does not leave the reader thread blocked
    tail = prefetch(iter([0, 1]), depth=1)
    assert next(tail) == 0
    time.sleep(0.3)  # the reader has handed over 1 and now waits to hand over its end marker
    tail.close()  # returns: the end marker is not pushed into a full queue forever


def test_spectrum_view_hides_one_window_per_row():
    """The second view zeroes one contiguous 30% window per spectrum (noise scales with the row's spread: none here)."""
    from astroclip_eval.models.reference import VIEW_MASK_FRACTION, ReferenceAstroCLIP

    torch.manual_seed(0)
    view = ReferenceAstroCLIP._spectrum_view(torch.ones(50, 200))
    starts = set()
    for row in view.numpy():
        hidden = np.flatnonzero(row == 0)
        assert hidden.size == int(VIEW_MASK_FRACTION * 200) and np.all(np.diff(hidden) == 1)
        assert np.all(row[row != 0] == 1)
        starts.add(int(hidden[0]))
    assert len(starts) > 10  # windows fall anywhere
