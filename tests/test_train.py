"""Pretraining and fine-tuning harness (SPEC 6): CLI, resume, errors, and torch staying optional.

Everything runs on the CPU in seconds: timm's ``test_resnet`` at 32 px on the
``tiny`` shards (4 classes, 48 images) and on a 2-class ImageFolder of
striped PNGs.  Runs use one thread, so a busy machine does not slow them
down by oversubscription.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fractaldb import experiments as E
from fractaldb import train as T

from tinyset import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
ARCH = "test_resnet"
FAST = ["--arch", ARCH, "--recipe", "cpu-sanity", "--batch-size", "16", "--image-size", "32", "--device", "cpu"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stripes(tmp_path_factory) -> Path:
    """A 2-class ImageFolder (horizontal vs vertical stripes) with train/ and val/."""
    root = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        for cls in ("horizontal", "vertical"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                period = int(rng.integers(3, 7))
                line = (np.arange(40) // period % 2 * 200 + rng.integers(0, 40)).astype(np.uint8)
                img = np.tile(line[:, None], (1, 40)) if cls == "horizontal" else np.tile(line[None, :], (40, 1))
                Image.fromarray(img).convert("RGB").save(root / split / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pretrained(tiny, tmp_path_factory) -> Path:
    """A 2-epoch pretraining run on the tiny shards (made through the CLI)."""
    out = tmp_path_factory.mktemp("runs") / "pre"
    torch.set_num_threads(1)
    code, stdout, err = run_cli(["pretrain", "--data", tiny, "--epochs", "2", "--out", out, *FAST])
    assert code == 0, err
    return out


def state_dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# pretrain / finetune through the command line
# ---------------------------------------------------------------------------------------------

def test_pretrain_writes_run_folder(pretrained):
    names = sorted(p.name for p in pretrained.iterdir())
    assert names == ["best.pt", "config.json", "last.pt", "log.jsonl"]
    log = [json.loads(line) for line in (pretrained / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(r["samples"] == 48 and 0 <= r["top1"] <= 100 and r["loss"] > 0 for r in log)
    ckpt = T.load_checkpoint(pretrained / "last.pt")
    assert ckpt["kind"] == "pretrain" and ckpt["arch"] == ARCH and ckpt["num_classes"] == 4
    assert ckpt["epoch"] == 2 and ckpt["steps_per_epoch"] == 3
    cfg = ckpt["config"]
    assert cfg == json.loads((pretrained / "config.json").read_text())
    assert (cfg["lr"], cfg["batch_size"], cfg["image_size"], cfg["recipe"]) == (0.05, 16, 32, "cpu-sanity")
    assert "optimizer" in ckpt and len(ckpt["history"]) == 2


def test_pretrain_prints_one_line_per_epoch(tiny, tmp_path):
    code, out, err = run_cli(["pretrain", "--data", tiny, "--epochs", "1", "--out", tmp_path / "r", *FAST])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("epoch   1  loss ") and " top1 " in lines[0]
    assert lines[-1].startswith(f"{ARCH} on 4 classes: 1 epochs, final loss ")


def test_finetune_imagefolder(pretrained, stripes, tmp_path):
    out = tmp_path / "ft"
    code, stdout, err = run_cli(["finetune", "--checkpoint", pretrained / "last.pt", "--data", stripes,
                                 "--epochs", "3", "--out", out, "--lr", "0.02", *FAST[2:]])
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["num_classes"] == 2 and results["classes"] == ["horizontal", "vertical"]
    assert results["epochs"] == 3 and results["arch"] == ARCH
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert results["last_top1"] == log[-1]["val_top1"]
    assert results["best_top1"] == max(r["val_top1"] for r in log)
    assert all(r["val_samples"] == 8 for r in log)
    assert stdout.splitlines()[-1] == (f"best val top1 {results['best_top1']:.2f}% (epoch {results['best_epoch']}), "
                                       f"last {results['last_top1']:.2f}% -> {out}/results.json")
    ckpt = T.load_checkpoint(out / "last.pt")
    assert ckpt["num_classes"] == 2 and ckpt["pretrained"] == str(pretrained / "last.pt")
    code, stdout, err = run_cli(["finetune", "--resume", "--epochs", "4", "--out", out])  # settings from last.pt
    assert code == 0, err
    assert stdout.startswith("epoch   4 ") and json.loads((out / "results.json").read_text())["epochs"] == 4


def test_finetune_loads_the_pretrained_weights(pretrained, stripes):
    """Every tensor but the new head comes from the checkpoint."""
    ckpt = T.load_checkpoint(pretrained / "last.pt")
    model = T.create_model(ARCH, 4, seed=99)
    model.load_state_dict(ckpt["model"])
    T.reset_head(model, 2, seed=1)
    head = {k for k, v in model.state_dict().items() if v.shape != ckpt["model"][k].shape}
    assert head == {"fc.weight", "fc.bias"}
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items() if k not in head)


def test_freeze_trains_only_the_head(pretrained, stripes, tmp_path):
    out = tmp_path / "probe"
    code, _, err = run_cli(["finetune", "--checkpoint", pretrained / "last.pt", "--data", stripes, "--freeze",
                            "--epochs", "1", "--out", out, *FAST[2:]])
    assert code == 0, err
    before, after = T.load_checkpoint(pretrained / "last.pt")["model"], T.load_checkpoint(out / "last.pt")["model"]
    changed = {k for k, v in after.items() if k.endswith("weight") and not torch.equal(v, before[k])}
    assert changed == {"fc.weight"}


def test_finetune_from_shards_and_scratch(tiny, tmp_path):
    """DATA/train and DATA/val may be 'fractaldb generate' outputs; --scratch is the baseline."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train").symlink_to(tiny)
    (data / "val").symlink_to(tiny)
    code, out, err = run_cli(["finetune", "--scratch", "--data", data, "--epochs", "1", "--out", tmp_path / "ft",
                              *FAST])
    assert code == 0, err
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["checkpoint"] is None and results["num_classes"] == 4


def test_on_the_fly_pretrain(tmp_path):
    code, out, err = run_cli(["pretrain", "--on-the-fly", "--preset", "tiny", "--epochs", "1", "--out", tmp_path / "r",
                              *FAST])
    assert code == 0, err
    log = json.loads((tmp_path / "r" / "log.jsonl").read_text())
    assert log["samples"] == 48  # 48 // 16 = 3 full batches per epoch


# ---------------------------------------------------------------------------------------------
# resume: an interrupted run continues exactly
# ---------------------------------------------------------------------------------------------

def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny, pretrained, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Stop

    out = tmp_path / "interrupted"
    cfg = T.resolve_config("pretrain", "cpu-sanity", dict(data=str(tiny), arch=ARCH, epochs=2, batch_size=16,
                                                           image_size=32, device="cpu"))
    with pytest.raises(Stop):
        T.pretrain(cfg, out, on_epoch=stop_after_first)
    assert T.load_checkpoint(out / "last.pt")["epoch"] == 1
    code, stdout, err = run_cli(["pretrain", "--out", out, "--resume"])
    assert code == 0, err
    assert stdout.startswith("epoch   2 ")
    a, b = T.load_checkpoint(pretrained / "last.pt"), T.load_checkpoint(out / "last.pt")
    assert state_dicts_equal(a["model"], b["model"])
    assert [(r["loss"], r["top1"]) for r in a["history"]] == [(r["loss"], r["top1"]) for r in b["history"]]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]


def test_resume_may_extend_the_run(tiny, tmp_path):
    """With a schedule that does not depend on the run length, 1 + 1 epochs == 2 epochs."""
    args = ["--data", tiny, "--schedule", "constant", *FAST]
    assert run_cli(["pretrain", *args, "--epochs", "2", "--out", tmp_path / "a"])[0] == 0
    assert run_cli(["pretrain", *args, "--epochs", "1", "--out", tmp_path / "b"])[0] == 0
    code, _, err = run_cli(["pretrain", "--resume", "--epochs", "2", "--out", tmp_path / "b"])
    assert code == 0, err
    a, b = T.load_checkpoint(tmp_path / "a" / "last.pt"), T.load_checkpoint(tmp_path / "b" / "last.pt")
    assert state_dicts_equal(a["model"], b["model"])


# ---------------------------------------------------------------------------------------------
# pure pieces
# ---------------------------------------------------------------------------------------------

def test_paper_schedule_is_the_original_one():
    """lr 0.01 (paper), x0.1 at epochs 30 and 60 of 90 (the original MultiStepLR)."""
    cfg = T.resolve_config("pretrain")
    assert (cfg["arch"], cfg["lr"], cfg["momentum"], cfg["weight_decay"], cfg["batch_size"], cfg["epochs"]) == \
        ("resnet50", 0.01, 0.9, 1e-4, 256, 90)
    assert (T.load_size(cfg), cfg["image_size"]) == (256, 224)
    lrs = [T.learning_rate(cfg, e * 10, 10) for e in (0, 29, 30, 59, 60, 89)]
    assert lrs == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])
    assert T.resolve_config("finetune")["lr"] == 0.01


def test_cosine_and_warmup():
    cfg = T.resolve_config("pretrain", "cpu-sanity", {"epochs": 10, "lr": 0.1, "warmup_epochs": 1})
    assert T.learning_rate(cfg, 0, 5) == pytest.approx(0.02)
    assert T.learning_rate(cfg, 4, 5) == pytest.approx(0.1)
    assert T.learning_rate(cfg, 5, 5) == pytest.approx(0.1)
    assert T.learning_rate(cfg, 49, 5) < 0.001
    assert [T.learning_rate(cfg, s, 5) for s in range(50)] == [T.learning_rate(cfg, s, 5) for s in range(50)]


def test_model_init_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = T.create_model(ARCH, 3, seed=5), T.create_model(ARCH, 3, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert state_dicts_equal(a.state_dict(), b.state_dict())
    assert not torch.equal(a.state_dict()["fc.weight"], T.create_model(ARCH, 3, seed=6).state_dict()["fc.weight"])


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit code 2, nothing written
# ---------------------------------------------------------------------------------------------

def test_missing_checkpoint(stripes, tmp_path):
    code, _, err = run_cli(["finetune", "--checkpoint", tmp_path / "nope.pt", "--data", stripes,
                            "--out", tmp_path / "o"])
    assert assert_one_line_error(code, err) == (f"error: checkpoint {tmp_path / 'nope.pt'} does not exist; give the "
                                                "last.pt or best.pt of a 'fractaldb pretrain' run")
    assert not (tmp_path / "o").exists()


def test_class_count_mismatch_on_resume(pretrained, stripes, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes((pretrained / "last.pt").read_bytes())
    before = (run / "last.pt").read_bytes()
    code, _, err = run_cli(["pretrain", "--resume", "--data", stripes / "train", "--out", run])
    assert assert_one_line_error(code, err) == (
        f"error: {run / 'last.pt'} was trained on 4 classes but {stripes / 'train'} has 2; resume with the data it "
        "was trained on, or start a new --out")
    assert (run / "last.pt").read_bytes() == before


def test_unknown_arch(tiny, tmp_path):
    code, _, err = run_cli(["pretrain", "--data", tiny, "--arch", "no_such_net", "--epochs", "1",
                            "--out", tmp_path / "o", "--device", "cpu"])
    assert assert_one_line_error(code, err) == (
        "error: unknown architecture 'no_such_net'; list the names with "
        "python -c \"import timm; print(timm.list_models('resnet*'))\"")
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli(["pretrain", "--data", tiny, "--arch", "resnet5", "--out", tmp_path / "o",
                            "--device", "cpu"])
    assert "did you mean resnet50" in assert_one_line_error(code, err)


def test_folder_without_train_and_val(stripes, pretrained, tmp_path):
    code, _, err = run_cli(["finetune", "--checkpoint", pretrained / "last.pt", "--data", stripes / "train",
                            "--out", tmp_path / "o", "--device", "cpu"])
    assert assert_one_line_error(code, err) == (
        f"error: {stripes / 'train'} has no train/ folder; fine-tuning reads {stripes / 'train'}/train and "
        f"{stripes / 'train'}/val (ImageFolders, or 'fractaldb generate' outputs)")


def test_empty_dataset(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    code, _, err = run_cli(["pretrain", "--data", tmp_path / "empty", "--out", tmp_path / "o", *FAST])
    assert assert_one_line_error(code, err) == (
        f"error: {tmp_path / 'empty'} holds no images in class folders; an ImageFolder is "
        f"{tmp_path / 'empty'}/<class>/<image>.png (or .jpg, .webp)")
    (tmp_path / "nothing").mkdir()
    code, _, err = run_cli(["pretrain", "--data", tmp_path / "nothing", "--out", tmp_path / "o", *FAST])
    assert assert_one_line_error(code, err) == (
        f"error: {tmp_path / 'nothing'} is neither a 'fractaldb generate' output (no manifest.json) nor an "
        "ImageFolder (no class folders)")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tiny, tmp_path):
    code, _, err = run_cli(["pretrain", "--data", tiny, "--arch", ARCH, "--out", tmp_path / "o", "--device", "cuda"])
    assert assert_one_line_error(code, err) == (
        f"error: --device cuda but PyTorch {torch.__version__} sees no CUDA device "
        "(torch.cuda.is_available() is False); use --device cpu")
    assert not (tmp_path / "o").exists()


def test_other_bad_input(tiny, pretrained, tmp_path):
    code, _, err = run_cli(["pretrain", "--data", tiny, "--out", pretrained, *FAST])
    assert assert_one_line_error(code, err) == (
        f"error: {pretrained} already holds a run (last.pt); add --resume to continue it, or use a new --out")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("a user's file\n")
    code, _, err = run_cli(["pretrain", "--data", tiny, "--out", foreign, *FAST])
    assert assert_one_line_error(code, err) == (
        f"error: {foreign} holds files but no config.json: it is not a training run folder, so fractaldb "
        "will not write into it; choose a new --out")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    code, _, err = run_cli(["pretrain", "--resume", "--out", tmp_path / "none"])
    assert assert_one_line_error(code, err) == (
        f"error: --resume: {tmp_path / 'none' / 'last.pt'} does not exist; run 'fractaldb pretrain' into "
        f"{tmp_path / 'none'} first, or drop --resume")
    code, _, err = run_cli(["pretrain", "--resume", "--out", pretrained, "--lr", "0.5"])
    assert assert_one_line_error(code, err) == (
        "error: --lr 0.5 differs from the run being resumed (0.05); drop it, or start a new --out")
    code, _, err = run_cli(["pretrain", "--on-the-fly", "--out", tmp_path / "o", *FAST])
    assert assert_one_line_error(code, err) == "error: --on-the-fly and --preset NAME go together (or give --data)"
    code, _, err = run_cli(["pretrain", "--data", tiny, "--workers", "-1", "--out", tmp_path / "o", *FAST])
    assert assert_one_line_error(code, err) == "error: workers from the command line must be an integer >= 0, got -1"
    code, _, err = run_cli(["pretrain", "--data", tiny, "--batch-size", "64", "--out", tmp_path / "o",
                            *FAST[:4], *FAST[6:]])
    assert "is larger than the 48 samples each loader worker reads per epoch" in assert_one_line_error(code, err)
    code, _, err = run_cli(["finetune", "--data", tiny, "--out", tmp_path / "o"])
    assert assert_one_line_error(code, err) == (
        "error: give --checkpoint CKPT, or --scratch for the from-scratch baseline (not both)")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# fractaldb experiment transfer: its tests are in tests/test_transfer.py
# ---------------------------------------------------------------------------------------------

def test_transfer_experiment_lives_in_experiments_only():
    """Training does not reach up to the experiment built on it (tests/test_layers.py)."""
    assert not hasattr(T, "transfer_experiment") and not hasattr(T, "TRANSFER_SETTINGS")
    assert callable(E.transfer_experiment) and callable(E.transfer_table)


# ---------------------------------------------------------------------------------------------
# torch stays optional
# ---------------------------------------------------------------------------------------------

_BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'timm', 'webdataset'):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
from fractaldb.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    print('exit', exc.code)
print('loaded', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm')))
"""


def _blocked(*argv):
    return subprocess.run([sys.executable, "-c", _BLOCK_TORCH, *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_cli_runs_without_torch(tmp_path):
    run = _blocked("presets", "list")
    assert "tiny " in run.stdout and "exit 0" in run.stdout and "loaded []" in run.stdout, run.stderr
    run = _blocked("pretrain", "--help")
    assert "--arch" in run.stdout and "exit 0" in run.stdout, run.stderr
    run = _blocked("pretrain", "--data", tmp_path, "--arch", "resnet18", "--out", tmp_path / "o")
    assert run.stderr == ("error: training needs PyTorch and timm (No module named 'torch'); "
                          "pip install 'fractaldb[torch]'\n")
    assert "exit 2" in run.stdout


def test_train_modules_stay_small():
    """fractaldb/train/ holds one concern per module, none longer than 400 lines."""
    modules = sorted((ROOT / "fractaldb" / "train").glob("*.py"))
    assert len(modules) >= 7 and not (ROOT / "fractaldb" / "train.py").exists()
    sizes = {p.name: len(p.read_text().splitlines()) for p in modules}
    assert max(sizes.values()) <= 400, sizes


def test_import_train_does_not_import_experiments():
    code = "import sys, fractaldb.train; print('fractaldb.experiments' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_import_fractaldb_does_not_import_torch():
    code = ("import sys, fractaldb, fractaldb.cli.main, fractaldb.dataset; "
            "print(any(m.startswith('torch') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
