"""The transfer study's protocol: its settings, and a :class:`Study` -- one target, its splits and
the run cache, bound once -- that pretrains an arm, fine-tunes (learning rate chosen on the
validation split) and fits the linear probe (C chosen on the validation split).

Hyperparameters are chosen on a validation split carved from the target's training set; the
test set is read once per final run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .._version import __version__
from ..errors import OutputError
from ..storage import claim_dir
from ..train import (create_model, evaluate, fit, load_size, prepare_batch, reset_head, resolve_config, setup_runtime,
                     tensor_source, write_text)
from ..train.sources import SquareUint8
from .arms import SCRATCH, large_arms, quick_arms, study_arms
from .cache import Missing, RunCache, fingerprint, merge_cache, run_key
from .targets import capped_test, fitting_shots, load_target, shot_subset, validation_split

#: The two ways a network is evaluated: every weight trained, or a linear classifier on frozen features.
PROTOCOLS = ("finetune", "linear")

_COMMON = dict(arch="test_resnet", image_size=28, crop_ratio=0.875, val_per_class=100,
               pretrain=dict(batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                             warmup_epochs=1, hflip=True, mean=[0.5] * 3, std=[0.5] * 3),
               finetune=dict(batch_size=32, momentum=0.9, weight_decay=5e-4, schedule="cosine", warmup_epochs=0,
                             mean=[0.5] * 3, std=[0.5] * 3),
               probe_c=[0.01, 0.1, 1.0, 10.0], threads=1, test_limit=2000,
               steps=dict(min=100, max=100, epochs=10), steps_large=dict(min=300, max=300, epochs=10),
               presentations=3200 * 6, lr=[0.03, 0.1])

#: The study's settings; docs/training.md says how they were sized.  ``presentations``: the
#: pretraining budget (images x epochs, the same for every arm: an arm of 32 images trains 100
#: times more epochs than one of 3,200); ``steps``: fine-tuning optimizer steps per run (``min``,
#: ``max``, and ``epochs`` in between); ``lr``: the fine-tuning learning rates tried on the
#: validation split.  The arm lists are those of the families registered when this module is
#: imported (``arms=`` takes any registered family's arm).
TRANSFER_SETTINGS = {
    "quick": {**_COMMON, "shots": [10, 100], "seeds": 5, "seeds_large": 2,
              "arms": quick_arms(study_arms()), "large_arms": [], "scaling": None},
    # the same single runs as quick (a full study reuses a quick run's cache), more of them
    "full": {**_COMMON, "shots": [10, 100, 1000, "all"], "seeds": 5, "seeds_large": 2,
             "arms": list(study_arms()), "large_arms": large_arms(study_arms()),
             "scaling": {"categories": [8, 32, 128], "epochs_factor": [1 / 3, 1], "shots": [10]}},
}


def load_all(folder: str, side: int) -> tuple:
    """Every sample of a ``fractaldb generate`` output as ``uint8 (N, 3, side, side)`` and labels."""
    from ..data import shard_dataset

    images, labels = [], []
    for img, label in shard_dataset(folder, resampled=False, shuffle=0, transform=SquareUint8(side)):
        images.append(img)
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)


def finetune_epochs(n: int, cfg: dict, steps: dict) -> int:
    """Epochs that give about ``clamp(epochs x steps_per_epoch, min, max)`` optimizer steps."""
    bs = cfg["batch_size"]
    per_epoch = n // bs + (1 if n % bs > 1 else 0)
    want = min(max(steps["epochs"] * per_epoch, steps["min"]), steps["max"])
    return max(1, round(want / per_epoch))


def features(model, images: "torch.Tensor", cfg: dict, rt, batch: int = 1000) -> "torch.Tensor":
    """Pooled penultimate features (``forward_head(pre_logits=True)``) of centre crops, eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = prepare_batch(images[i:i + batch], cfg, rt)
            out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
    return torch.cat(out)


def probe_accuracy(ftrain, ytrain, fevals: list, c: float) -> list:
    """Multinomial logistic regression (L-BFGS, L2 with inverse strength ``c``) on standardised
    features; accuracy (%) on each ``(features, labels)`` of ``fevals``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mu, sd = ftrain.mean(0), ftrain.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(((ftrain - mu) / sd).numpy(), ytrain.numpy())
    return [100.0 * float((clf.predict(((f - mu) / sd).numpy()) == y.numpy()).mean()) for f, y in fevals]


class Study:
    """One transfer study, bound once: its settings, the target with its validation, shot pool and
    test splits, the training configs, the output folder and the run cache.

    ``pretrained``, ``pre_info`` and ``reports`` fill in as arms are pretrained; ``raw`` holds the
    finished runs, ``{arm: {(shots, protocol): {"per_seed", "hyper"}}}``.
    """

    def __init__(self, settings: dict, out, target: str, target_dir=None, on_step=None, merge=()):
        self.settings, self.target, self.on_step = settings, target, on_step
        self._load(target_dir)
        # created only now: a bad target or setting leaves nothing behind; a folder that is not a
        # study's (no cache/runs.json) is never written into
        self.out = claim_dir(out, "cache/runs.json", "the --out of an 'experiment transfer' run")
        try:
            (self.out / "cache").mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.out}: {exc.strerror or exc}; choose a writable --out") from None
        self.finger = fingerprint(settings, self.data)
        for src in merge:
            merge_cache(Path(src), self.out, self.finger)
        self.cache = RunCache(self.out / "cache", self.finger, settings.get("cached_only", False))
        if not (self.out / "cache" / "runs.json").exists():
            self.cache.save()  # the folder's mark: a rerun resumes it
        self.pretrained, self.pre_info, self.reports, self.raw = {}, {}, {}, {}

    def _load(self, target_dir) -> None:
        """The runtime, the pretraining and fine-tuning configs, the target and its splits."""
        settings = self.settings
        self.rt = setup_runtime("cpu", "off")
        common = dict(arch=settings["arch"], image_size=settings["image_size"], crop_ratio=settings["crop_ratio"],
                      workers=0, device="cpu", amp="off")
        self.pre_base = resolve_config("pretrain", "cpu-sanity",
                                       {**common, **settings["pretrain"], "seed": 0, "epochs": 1})
        self.side = load_size(self.pre_base)
        self.step(f"load {self.target}")
        data = self.data = load_target(self.target, self.side, target_dir)
        self.ft_base = resolve_config("finetune", "cpu-sanity", {**common, **settings["finetune"],
                                                                 "hflip": data["hflip"], "lr": settings["lr"][0],
                                                                 "epochs": 1})
        self.n_classes = len(data["classes"])
        self.val_idx, self.pool = validation_split(data["train_y"], settings["val_per_class"])
        self.test_idx = capped_test(data["test_y"], settings["test_limit"])
        self.tx, self.ty = data["test_x"][self.test_idx], data["test_y"][self.test_idx]
        self.vx, self.vy = data["train_x"][self.val_idx], data["train_y"][self.val_idx]
        settings["shots"] = fitting_shots(data["train_y"], self.pool, settings["shots"], self.target)
        if "vit_shots" in settings:  # v2: the ViT only at shots that run (digits has no 100)
            settings["vit_shots"] = [x for x in settings["vit_shots"] if x in settings["shots"]]
        for s in settings["shots"]:
            if s != "all":
                self.shots(s, 0)  # enough images per class? fail before any work

    def step(self, message: str) -> None:
        if self.on_step:
            self.on_step(message)

    def shots(self, s, seed: int) -> "torch.Tensor":
        """The training indices of ``s`` shots per class for ``seed``."""
        return shot_subset(self.data["train_y"], self.pool, s, seed)

    # -- pretraining, once per arm (weights cached) ------------------------------------------------

    def pretrain(self, arm: str, dcfg: dict, factor: float = 1.0) -> dict:
        """``arm`` pretrained on its data (resolved config ``dcfg``) for ``factor`` times the
        study's budget: the weights and what the run was; kept in the cache."""
        wpath = self.cache.weights(arm)
        if wpath.exists():
            saved = self.cache.load_weights(arm)
            if factor == 1.0:
                self.report(arm, dcfg)
            return saved
        if self.cache.cached_only:
            raise Missing(arm)
        images, labels = self._arm_data(arm, dcfg, factor == 1.0)
        epochs = max(1, round(self.settings["presentations"] * factor / len(labels)))
        pre_cfg = {**self.pre_base, "epochs": epochs}
        self.step(f"pretrain {arm} ({len(labels)} images x {epochs} epochs)")
        t = time.perf_counter()
        src = tensor_source(images, labels, pre_cfg, self.rt, True, name=arm)
        model = create_model(pre_cfg["arch"], src.num_classes, pre_cfg["seed"])
        res = fit(pre_cfg, self.rt, model, src)
        saved = {"state": model.state_dict(), "classes": src.num_classes, "images": len(labels), "epochs": epochs,
                 "presentations": epochs * len(labels), "final_top1": res["last"]["top1"],
                 "final_loss": res["last"]["loss"], "seconds": round(time.perf_counter() - t, 1)}
        self.cache.save_weights(arm, saved)
        return saved

    def _arm_data(self, arm: str, dcfg: dict, with_report: bool) -> tuple:
        """``arm``'s pretraining images and labels, generated into a temporary folder (and its data
        report made from there)."""
        import tempfile

        from ..dataset import generate

        with tempfile.TemporaryDirectory(prefix=f"fractaldb-{arm}-") as tmp:
            self.step(f"generate {arm}")
            generate(dcfg, tmp)
            images, labels = load_all(tmp, self.side)
            if with_report:
                self.report(arm, dcfg, tmp)
        return images, labels

    def report(self, arm: str, dcfg: dict, folder=None) -> None:
        """``fractaldb report`` of the arm's pretraining data (out/reports/ARM/), its key numbers kept."""
        import tempfile

        from ..dataset import generate
        from ..report import dataset_report

        path = self.cache.report(arm)
        kept = self.cache.read_report(arm)
        if kept is not None:
            self.reports[arm] = kept
            return
        if folder is None:
            with tempfile.TemporaryDirectory(prefix=f"fractaldb-{arm}-") as tmp:
                self.step(f"generate {arm} (for its report)")
                generate(dcfg, tmp)
                return self.report(arm, dcfg, tmp)
        self.step(f"report {arm}")
        r = dataset_report(folder, self.out / "reports" / arm, max_images=4000, overwrite=True)
        self.reports[arm] = {"coverage_mean": r["coverage"]["mean"], "separability_top1": r["separability"]["top1"],
                             "separability_chance": r["separability"]["chance"],
                             "near_empty": r["near_empty"]["count"],
                             "degenerate_variants": r["degenerate_variants"]["count"],
                             "near_duplicate_pairs": len(r["near_duplicate_classes"]["pairs"])}
        write_text(path, json.dumps(self.reports[arm]) + "\n")

    # -- fine-tuning -----------------------------------------------------------------------------

    def model(self, arm: str, seed: int):
        """The network to learn the target with: random (scratch) or ``arm``'s weights with a new head."""
        if arm == SCRATCH:
            return create_model(self.settings["arch"], self.n_classes, seed)
        p = self.pretrained[arm]
        model = create_model(self.settings["arch"], p["classes"], 0)
        model.load_state_dict(p["state"])
        reset_head(model, self.n_classes, seed)
        return model

    def finetune(self, arm: str, train_idx, seed: int, lr: float) -> tuple:
        """The model fine-tuned on ``train_idx`` and its config."""
        settings, data = self.settings, self.data
        x, y = data["train_x"][train_idx], data["train_y"][train_idx]
        cfg = {**self.ft_base, "seed": seed, "lr": lr}
        large = len(y) > 100 * self.n_classes
        cfg["epochs"] = finetune_epochs(len(y), cfg, settings.get("steps_large", settings["steps"]) if large
                                        else settings["steps"])
        cfg["eval_every"] = cfg["epochs"]
        model = self.model(arm, seed)
        fit(cfg, self.rt, model, tensor_source(x, y, cfg, self.rt, True, "target-train", self.n_classes))
        return model, cfg

    def score(self, model, cfg: dict, ex, ey) -> float:
        """Top-1 (%) of ``model`` on the images ``ex`` with labels ``ey``."""
        return evaluate(model, tensor_source(ex, ey, cfg, self.rt, False, "eval", self.n_classes), cfg,
                        self.rt)["val_top1"]

    def evaluate(self, arm: str, shot_list) -> dict:
        """Fine-tune and linear-probe results of ``arm`` at each shot count: {(shots, protocol): per_seed}.
        A run missing from the cache with ``cached_only`` is left out."""
        res = {}
        feats = {}
        for s in shot_list:
            small = s != "all" and s <= 100
            n_seeds = self.settings["seeds"] if small else self.settings["seeds_large"]
            try:
                res.update(self.finetune_rows(arm, s, n_seeds))
            except Missing:
                pass
            try:
                res.update(self.probe(arm, s, 1 if s == "all" else n_seeds, feats))
            except Missing:
                pass
        return res

    def finetune_rows(self, arm: str, s, n_seeds: int) -> dict:
        """Fine-tuned test top-1 of ``n_seeds`` seeds at the learning rate chosen on validation."""
        sel = self.select_lr(arm, s)
        per_seed = [sel["test_seed0"]]
        for seed in range(1, n_seeds):
            key = run_key(arm, s, "finetune", seed, sel["lr"])
            r = self.cache.get(key)
            if r is None:
                self.step(f"{arm} {s} shots: fine-tune seed {seed}")
                r = self.score(*self.finetune(arm, self.shots(s, seed), seed, sel["lr"]), self.tx, self.ty)
                self.cache.put(key, r)
            per_seed.append(r)
        return {(s, "finetune"): {"per_seed": per_seed, "hyper": {"lr": sel["lr"], "val_top1_by_lr": sel["val"],
                                                                  "epochs": sel["epochs"]}}}

    def select_lr(self, arm: str, s) -> dict:
        """The learning rate chosen on the validation split with seed 0's subset; that seed's chosen
        model is then scored on the test set, once."""
        key = run_key(arm, s, "finetune", "select")
        sel = self.cache.get(key)
        if sel is None:
            tried, models = {}, {}
            idx0 = self.shots(s, 0)
            for lr in self.settings["lr"]:
                self.step(f"{arm} {s} shots: fine-tune lr {lr} (validation)")
                models[lr] = self.finetune(arm, idx0, 0, lr)
                tried[str(lr)] = self.score(*models[lr], self.vx, self.vy)
            best = max(self.settings["lr"], key=lambda lr: tried[str(lr)])  # first of equals
            sel = {"lr": best, "val": tried, "test_seed0": self.score(*models[best], self.tx, self.ty),
                   "epochs": models[best][1]["epochs"]}
            del models
            self.cache.put(key, sel)
        return sel

    # -- linear probe ----------------------------------------------------------------------------

    def probe(self, arm: str, s, n_seeds: int, feats: dict) -> dict:
        """The linear probe on frozen features (for scratch: random features); C chosen on validation.
        ``feats`` keeps the arm's features across shot counts."""
        key = run_key(arm, s, "linear", n_seeds)
        r = self.cache.get(key)
        if r is None:
            self.step(f"{arm} {s} shots: linear probe")
            if "model" not in feats:
                model = self.model(arm, 0)
                feats.update(model=model, val=features(model, self.vx, self.ft_base, self.rt),
                             test=features(model, self.tx, self.ft_base, self.rt), train={})
            train_y, probe_c = self.data["train_y"], self.settings["probe_c"]
            idx0 = self.shots(s, 0)
            f0 = self._train_features(feats, idx0)
            val_by_c = {str(c): probe_accuracy(f0, train_y[idx0], [(feats["val"], self.vy)], c)[0] for c in probe_c}
            best_c = max(probe_c, key=lambda c: val_by_c[str(c)])
            scores = []
            for seed in range(n_seeds):
                idx = self.shots(s, seed)
                scores.append(probe_accuracy(self._train_features(feats, idx), train_y[idx],
                                             [(feats["test"], self.ty)], best_c)[0])
            r = {"per_seed": scores, "hyper": {"C": best_c, "val_top1_by_C": val_by_c}}
            self.cache.put(key, r)
        return {(s, "linear"): r}

    def _train_features(self, feats: dict, idx) -> "torch.Tensor":
        """Features of the training images ``idx``, each computed once."""
        missing = [int(i) for i in idx if int(i) not in feats["train"]]
        if missing:
            f = features(feats["model"], self.data["train_x"][missing], self.ft_base, self.rt)
            feats["train"].update(zip(missing, f))
        return torch.stack([feats["train"][int(i)] for i in idx])

    # -- what results.json says about the study --------------------------------------------------

    def config(self) -> dict:
        """results.json's ``config``: the settings, the target and its splits, the arms, the pretraining runs."""
        arms = study_arms()
        return {"settings": self.settings, "target": self.target, "target_source": self.data["source"],
                "classes": self.data["classes"], "pool": len(self.pool), "val": len(self.val_idx),
                "test": len(self.test_idx), "arms": {a: arms[a].description for a in self.settings["arms"]},
                "pretrained": self.pre_info, "torch_threads": torch.get_num_threads(),
                "versions": {"fractaldb": __version__, "torch": str(torch.__version__)}}
