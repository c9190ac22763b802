"""The ViT-era recipes (deit-tiny as published, 1p-frac) at CPU-sanity size: timm's
RandAugment, Mixup/CutMix, random erasing, label smoothing, drop-path and AdamW in
our loop, seeded like everything else; and the multi-label loss."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fractaldb import train as T  # noqa: E402
from fractaldb.cli.main import cli  # noqa: E402
from fractaldb.train.augment import BatchAugment, loss_and_hits, seeded_globals  # noqa: E402

#: CPU-sanity overrides of any recipe: a tiny ViT, small images, one short epoch.
SANITY = dict(arch="test_vit", image_size=32, epochs=1, batch_size=8, epoch_size=8, device="cpu", amp="off",
              warmup_epochs=0)


def test_cli_lists_every_recipe():
    """--recipe's choices come from the schema, which takes them from RECIPES."""
    for command in ("pretrain", "finetune"):
        recipe = next(p for p in cli.commands[command].params if p.name == "recipe")
        assert sorted(recipe.type.choices) == sorted(T.RECIPES)


def test_deit_recipe_is_the_published_one():
    cfg = T.resolve_config("pretrain", "deit-tiny")
    assert cfg["optimizer"] == "adamw" and cfg["weight_decay"] == 0.05 and cfg["schedule"] == "cosine"
    assert cfg["warmup_epochs"] == 5 and cfg["randaugment"] == "rand-m9-mstd0.5-inc1"
    assert (cfg["mixup"], cfg["cutmix"], cfg["label_smoothing"]) == (0.8, 1.0, 0.1)
    assert (cfg["drop_path"], cfg["random_erasing"], cfg["hflip"]) == (0.1, 0.25, False)
    assert cfg["mean"] == cfg["std"] == [0.5] * 3
    # AdamW 5e-4 x batch / 512
    steps = 10
    assert T.learning_rate({**cfg, "warmup_epochs": 0}, 0, steps) == pytest.approx(5e-4 * 1024 / 512)


@pytest.mark.parametrize("recipe, repeats", [("deit-tiny", 2), ("1p-frac", 1)])
def test_recipe_runs_at_cpu_sanity_size_and_repeats(recipe, repeats, tmp_path):
    runs = []
    for k in range(repeats):
        cfg = T.resolve_config("pretrain", recipe, dict(SANITY, preset="tiny"))
        result = T.pretrain(cfg, tmp_path / f"r{k}")
        assert np.isfinite(result["last"]["loss"])
        runs.append(T.load_checkpoint(tmp_path / f"r{k}" / "last.pt")["model"])
    # every random choice (RandAugment, Mixup/CutMix, erasing, drop-path) came from the run seed
    assert all(torch.equal(runs[0][k], runs[-1][k]) for k in runs[0])


def test_augmentation_changes_the_batch_and_leaves_global_rngs_alone():
    cfg = T.resolve_config("pretrain", "deit-tiny", dict(SANITY))
    aug = BatchAugment(cfg, num_classes=4)
    assert aug.active
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    py, npst = random.getstate(), np.random.get_state()
    a, b = aug.images(x, 7), aug.images(x, 7)
    assert torch.equal(a, b) and not torch.equal(a, x)
    xf, y = aug.batch(x.float() / 255, torch.tensor([0, 1, 2, 3]), 8)
    assert y.shape == (4, 4) and torch.allclose(y.sum(1), torch.ones(4))  # soft targets
    assert random.getstate() == py and all(np.array_equal(u, v) for u, v in zip(np.random.get_state(), npst)
                                           if isinstance(u, np.ndarray))
    with seeded_globals(3):
        first = random.random()
    with seeded_globals(3):
        assert random.random() == first


def test_losses():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    loss, hits = loss_and_hits(logits, torch.tensor([0, 2]), {"loss": "ce", "label_smoothing": 0.0})
    assert int(hits) == 1
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))))
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    loss, hits = loss_and_hits(logits, soft, {"loss": "ce"})
    want = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
    assert float(loss) == pytest.approx(float(want)) and int(hits) == 1
    # multi-label: BCE, positives weighted by classes / positives (Anderson & Farrell), a hit is a positive top-1
    target = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    loss, hits = loss_and_hits(logits, target, {"loss": "bce"})
    weight = torch.tensor([[1.5, 1.5, 1.0], [1.0, 1.0, 3.0]])
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
    assert float(loss) == pytest.approx(float(want)) and int(hits) == 1


def test_multi_label_pretraining_from_the_cli(tmp_path):
    """multi-fractal data (multi-hot labels) with the BCE loss, end to end at CPU-sanity size."""
    from tinyset import run_cli

    ds = tmp_path / "multi"
    code, _, err = run_cli(["generate", "--preset", "multi-fractal-tiny", "--out", ds, "--workers", "2"])
    assert code == 0, err
    code, out, err = run_cli(["pretrain", "--data", ds, "--recipe", "cpu-sanity", "--arch", "test_resnet",
                              "--loss", "bce", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
                              "--device", "cpu", "--out", tmp_path / "run"])
    assert code == 0, err
    cfg = T.load_checkpoint(tmp_path / "run" / "last.pt")["config"]
    assert cfg["loss"] == "bce"
