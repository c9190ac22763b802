"""Protocol v2 of the transfer study (docs/training.md, "Protocol v2"): the fine-tuning length and
learning rate chosen together on validation for every arm, pixel and batch-norm-recalibrated
baselines, 3 pretraining seeds crossed with 10 fine-tuning seeds, the full test set, and a second
architecture (a small ViT at 28 px).

A :class:`StudyV2` reuses :class:`~.protocol.Study` for the target, its splits, the run cache
and the arms' data; the runs are cached one by one (``v2|...`` keys), so an interrupted study
resumes and ``--merge`` assembles one split over processes or machines.  Results are cells
``(arch, arm, shots, protocol) -> {"per_seed": [[p][f]], "pretrain_seeds", "hyper"}``, written
as rows by :mod:`.v2_tables` only when every run of the cell exists.
"""

from __future__ import annotations

import copy
import logging
import time

import torch

from ..errors import ConfigError
from ..train import create_model, fit, prepare_batch, reset_head, tensor_source
from ..train.sources import Source
from .arms import SCRATCH, primary_arm, resolve_presets, study_arms
from .cache import Missing
from .protocol import Study, features, probe_accuracy

#: The baseline arms (no network): raw-pixel logistic regression and nearest class mean.
PIXEL_ARMS = ("pixels-logreg", "pixels-centroid")
#: Architectures: the ResNet of every arm, and the ViT of the second-architecture arms.
ARCHS = {"resnet": ("test_resnet", {}), "vit": ("test_vit", {"patch_size": 4})}  # the ViT is built at image_size
GRID_SMALL = {"steps": [100, 300, 1000], "lr": [0.01, 0.03, 0.1]}
GRID_LARGE = {"steps": [300, 1000, 3000], "lr": [0.01, 0.03, 0.1]}
PROBE_C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]

_COMMON = dict(protocol="v2", arch="test_resnet", image_size=28, crop_ratio=0.875,
               pretrain=dict(batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                             warmup_epochs=1, hflip=True, mean=[0.5] * 3, std=[0.5] * 3),
               finetune=dict(batch_size=32, momentum=0.9, weight_decay=5e-4, schedule="cosine", warmup_epochs=0,
                             mean=[0.5] * 3, std=[0.5] * 3),
               probe_c=PROBE_C, grid_small=GRID_SMALL, grid_large=GRID_LARGE, lr=GRID_SMALL["lr"], threads=1,
               test_limit=0, presentations=3200 * 6, pretrain_seeds=3, seeds=10, seeds_large=3,
               vit_shots=[10, 100])

#: Protocol v2's settings per target; ``quick`` is Fashion-MNIST's with fewer runs (the same per-run
#: settings, so its runs are runs of the full study too).
V2_SETTINGS = {
    "fashion-mnist": {**_COMMON, "val_per_class": 100, "shots": [10, 100, 1000, "all"]},
    "digits": {**_COMMON, "val_per_class": 30, "shots": [10, "all"]},
    "quick": {**_COMMON, "val_per_class": None, "shots": [10], "pretrain_seeds": 1, "seeds": 2, "vit_shots": []},
}


def v2_settings(target: str, quick: bool, arms=None, shots=None, seeds=None, cached_only=False,
                threads=None) -> dict:
    """A copy of the target's v2 settings (``quick``: the smoke test) with the options applied."""
    own = "digits" if target == "digits" else "fashion-mnist"
    s = copy.deepcopy(V2_SETTINGS["quick" if quick else own])
    if s["val_per_class"] is None:
        s["val_per_class"] = V2_SETTINGS[own]["val_per_class"]
    table = study_arms()
    primary = primary_arm(table)[0]
    every = [*table, *PIXEL_ARMS]
    s["arms"] = [SCRATCH, primary, *PIXEL_ARMS] if quick else every
    s["large_arms"] = [SCRATCH, primary]
    s["vit_arms"] = [SCRATCH, primary]
    if arms is not None:
        for arm in arms:
            if arm not in every:
                raise ConfigError(f"unknown arm {arm!r}; choose from {', '.join(every)}")
        s["arms"] = [a for a in every if a in {SCRATCH, *arms}]
        s["vit_arms"] = [a for a in s["vit_arms"] if a in s["arms"]]
    if shots is not None:
        s["shots"] = list(shots)  # the ViT's shots follow when the study fits them to the target
    if seeds is not None:
        if seeds <= 1:
            raise ConfigError(f"--seeds must be at least 2 (an interval needs two), got {seeds}")
        s["seeds"] = seeds
    if threads is not None:
        if threads <= 0:
            raise ConfigError(f"--threads must be a positive integer, got {threads}")
        s["threads"] = threads
    s["cached_only"] = bool(cached_only)
    return s


def small_shots(s) -> bool:
    return s != "all" and s <= 100


def exact_steps_source(x, y, cfg: dict, rt, steps: int, n_classes: int) -> Source:
    """Exactly ``steps`` training batches in one "epoch": batches of successive seeded
    permutations of ``(x, y)`` (each pass as :func:`tensor_source` draws it), cut at ``steps``."""
    base = tensor_source(x, y, cfg, rt, True, "target-train", n_classes)
    if base.steps == 0:
        raise ConfigError(f"{len(y)} training images make no batch of {cfg['batch_size']}")

    def batches(epoch):
        done, rnd = 0, 0
        while True:
            for batch in base.batches(rnd):
                yield batch
                done += 1
                if done == steps:
                    return
            rnd += 1

    return Source(batches, n_classes, steps, "target-train")


def recalibrate_bn(model, images, cfg: dict, rt, batch: int = 256) -> None:
    """Reset every batch-norm layer's running statistics and re-estimate them (cumulative
    averages) from train-mode forward passes over ``images`` (centre crops); no weight changes."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            if len(images[i:i + batch]) > 1:
                model(prepare_batch(images[i:i + batch], cfg, rt))
    model.eval()


def pixel_features(images, cfg: dict, rt) -> "torch.Tensor":
    """The normalised centre crop, channels averaged (one channel for a gray target), flattened."""
    return torch.cat([prepare_batch(images[i:i + 4096], cfg, rt).mean(1).flatten(1).cpu()
                      for i in range(0, len(images), 4096)])


def centroid_accuracy(ftrain, ytrain, ftest, ytest, n_classes: int) -> float:
    """Top-1 (%) of the nearest class mean (Euclidean) of the training features."""
    means = torch.stack([ftrain[ytrain == c].mean(0) for c in range(n_classes)])
    pred = torch.cdist(ftest, means).argmin(1)
    return 100.0 * float((pred == ytest).double().mean())


def vkey(arch: str, arm: str, shots, protocol: str, *rest) -> str:
    """A v2 run's key in the cache: ``v2|ARCH|ARM|SHOTS|PROTOCOL|...``."""
    return "|".join(str(p) for p in ("v2", arch, arm, shots, protocol, *rest))


class StudyV2(Study):
    """Protocol v2 on one target; ``cells`` fills in as cells complete."""

    def __init__(self, settings: dict, out, target: str, target_dir=None, on_step=None, merge=()):
        super().__init__(settings, out, target, target_dir, on_step, merge)
        self.cells, self.nets, self._images, self._frozen = {}, {}, {}, {}
        self.presets = resolve_presets([a for a in settings["arms"] if a not in PIXEL_ARMS], study_arms())

    # -- seeds, grids, networks ------------------------------------------------------------------

    def f_seeds(self, s) -> list:
        return list(range(self.settings["seeds"] if small_shots(s) else self.settings["seeds_large"]))

    def p_seeds(self, arm: str) -> list:
        return [0] if arm == SCRATCH else list(range(self.settings["pretrain_seeds"]))

    def arch(self, arch: str) -> tuple:
        """(timm name, keyword arguments) of ``resnet`` or ``vit`` at the study's image size."""
        name, kw = ARCHS[arch]
        return name, ({**kw, "img_size": self.settings["image_size"]} if arch == "vit" else kw)

    def grid(self, s) -> list:
        g = self.settings["grid_small" if small_shots(s) else "grid_large"]
        return [(steps, lr) for steps in g["steps"] for lr in g["lr"]]

    def pretrained_net(self, arch: str, arm: str, p: int) -> dict:
        """``arm``'s network pretrained with seed ``p`` (cached weights, else trained now)."""
        name = f"{arm}.p{p}" if arch == "resnet" else f"{arch}.{arm}.p{p}"
        if name in self.nets:
            return self.nets[name]
        if self.cache.weights(name).exists():
            saved = self.cache.load_weights(name)
            self.report(arm, self.presets[arm])
        elif self.cache.cached_only:
            raise Missing(name)
        else:
            if arm not in self._images:
                self._images = {arm: self._arm_data(arm, self.presets[arm], True)}  # one arm's data in memory
            images, labels = self._images[arm]
            name_arch, kw = self.arch(arch)
            cfg = {**self.pre_base, "arch": name_arch, "seed": p,
                   "epochs": max(1, round(self.settings["presentations"] / len(labels)))}
            self.step(f"pretrain {name} ({len(labels)} images x {cfg['epochs']} epochs)")
            t = time.perf_counter()
            src = tensor_source(images, labels, cfg, self.rt, True, name=arm)
            model = create_model(name_arch, src.num_classes, p, **kw)
            res = fit(cfg, self.rt, model, src)
            saved = {"state": model.state_dict(), "classes": src.num_classes, "images": len(labels),
                     "epochs": cfg["epochs"], "presentations": cfg["epochs"] * len(labels),
                     "final_top1": res["last"]["top1"], "final_loss": res["last"]["loss"],
                     "seconds": round(time.perf_counter() - t, 1)}
            self.cache.save_weights(name, saved)
            from .v2_tables import learned

            if not learned(saved["final_top1"], src.num_classes):  # said now, not only in the tables
                logging.getLogger("fractaldb").warning(
                    f"{name}: pretraining ended at {saved['final_top1']:.1f} % training top-1 on {src.num_classes} "
                    f"classes (chance {100 / src.num_classes:.1f} %): it did not learn, so its cells compare "
                    "initialisations, not data")
        self.pre_info[name] = {k: v for k, v in saved.items() if k != "state"}
        self.nets = {name: saved}  # one network in memory at a time
        return saved

    def net(self, arch: str, arm: str, p: int, f: int):
        """The network to learn the target with: random (scratch, seed ``f``) or ``arm`` pretrained
        with seed ``p`` and a new head of seed ``f``."""
        name, kw = self.arch(arch)
        if arm == SCRATCH:
            return create_model(name, self.n_classes, f, **kw)
        saved = self.pretrained_net(arch, arm, p)
        model = create_model(name, saved["classes"], 0, **kw)
        model.load_state_dict(saved["state"])
        reset_head(model, self.n_classes, f)
        return model

    # -- fine-tuning: (steps, lr) on validation, then every (p, f) -------------------------------

    def ft_run(self, arch: str, arm: str, s, p: int, f: int, steps: int, lr: float) -> tuple:
        idx = self.shots(s, f)
        cfg = {**self.ft_base, "arch": ARCHS[arch][0], "seed": f, "lr": lr, "epochs": 1, "eval_every": 1}
        model = self.net(arch, arm, p, f)
        self.step(f"{arch} {arm} {s} shots: fine-tune p{p} f{f} {steps} steps lr {lr}")
        fit(cfg, self.rt, model, exact_steps_source(self.data["train_x"][idx], self.data["train_y"][idx], cfg,
                                                    self.rt, steps, self.n_classes))
        return model, cfg

    def select_ft(self, arch: str, arm: str, s) -> dict:
        """(steps, lr) chosen on the validation split (pretraining seed 0, subset 0); the chosen
        model is then scored on the test set once (it is run (0, 0) of the cell)."""
        key = vkey(arch, arm, s, "finetune", "select")
        sel = self.cache.get(key)
        if sel is None:
            val, best = {}, None
            for steps, lr in self.grid(s):
                model, cfg = self.ft_run(arch, arm, s, 0, 0, steps, lr)
                val[f"{steps}@{lr}"] = self.score(model, cfg, self.vx, self.vy)
                if best is None or val[f"{steps}@{lr}"] > best[0]:  # first of equals
                    best = (val[f"{steps}@{lr}"], steps, lr, model, cfg)
            sel = {"steps": best[1], "lr": best[2], "val": val, "test_p0_f0": self.score(*best[3:], self.tx, self.ty)}
            self.cache.put(key, sel)
        return sel

    def finetune_cell(self, arch: str, arm: str, s) -> dict:
        sel = self.select_ft(arch, arm, s)
        table = []
        for p in self.p_seeds(arm):
            row = []
            for f in self.f_seeds(s):
                key = vkey(arch, arm, s, "finetune", f"p{p}", f"f{f}", sel["steps"], sel["lr"])
                r = sel["test_p0_f0"] if (p, f) == (0, 0) else self.cache.get(key)
                if r is None:
                    r = self.score(*self.ft_run(arch, arm, s, p, f, sel["steps"], sel["lr"]), self.tx, self.ty)
                    self.cache.put(key, r)
                row.append(r)
            table.append(row)
        return {"per_seed": table, "pretrain_seeds": [] if arm == SCRATCH else self.p_seeds(arm),
                "hyper": {"steps": sel["steps"], "lr": sel["lr"], "val_top1": sel["val"],
                          "candidates": {"steps": sorted({a for a, _ in self.grid(s)}),
                                         "lr": sorted({b for _, b in self.grid(s)})}}}

    # -- linear probe and the pixel baselines ----------------------------------------------------

    def _probe_features(self, arm: str, s, p: int, f: int, with_val: bool) -> tuple:
        """(train, val or None, test) features: ``arm``'s frozen network of seed ``p``, or for
        scratch the random network of seed ``f`` with batch-norm statistics from subset ``f``."""
        idx = self.shots(s, f)
        x = self.data["train_x"][idx]
        if arm in PIXEL_ARMS:
            fe = lambda imgs: pixel_features(imgs, self.ft_base, self.rt)  # noqa: E731
        else:
            model = self.net("resnet", arm, p, f)
            if arm == SCRATCH:
                recalibrate_bn(model, x, self.ft_base, self.rt)
            fe = lambda imgs: features(model, imgs, self.ft_base, self.rt)  # noqa: E731
            if arm != SCRATCH:  # a frozen pretrained network: its val/test features are kept per (arm, p)
                if self._frozen.get("key") != (arm, p):
                    self._frozen = {"key": (arm, p), "test": fe(self.tx)}
                if with_val and "val" not in self._frozen:
                    self._frozen["val"] = fe(self.vx)
                return fe(x), self._frozen.get("val") if with_val else None, self._frozen["test"]
        return fe(x), (fe(self.vx) if with_val else None), fe(self.tx)

    def probe_cell(self, arm: str, s) -> dict:
        """Linear probe (pretrained arms, scratch's recalibrated random features) or a pixel
        baseline: C on validation with (p, f) = (0, 0), then every (p, f) on the test set."""
        proto = "pixels" if arm in PIXEL_ARMS else "linear"
        cs = [] if arm == "pixels-centroid" else self.settings["probe_c"]
        sel = {"C": None, "val": {}}
        if cs:
            sel = self.cache.get(vkey("resnet", arm, s, proto, "select"))
            if sel is None:
                self.step(f"{arm} {s} shots: {proto} C on validation")
                ftr, fva, _ = self._probe_features(arm, s, 0, 0, True)
                ytr = self.data["train_y"][self.shots(s, 0)]
                val = {str(c): probe_accuracy(ftr, ytr, [(fva, self.vy)], c)[0] for c in cs}
                sel = {"C": max(cs, key=lambda c: val[str(c)]), "val": val}
                self.cache.put(vkey("resnet", arm, s, proto, "select"), sel)
        table = []
        for p in self.p_seeds(arm if arm not in PIXEL_ARMS else SCRATCH):
            row = []
            for f in self.f_seeds(s):
                key = vkey("resnet", arm, s, proto, f"p{p}", f"f{f}", sel["C"])
                r = self.cache.get(key)
                if r is None:
                    self.step(f"{arm} {s} shots: {proto} p{p} f{f}")
                    ftr, _, fte = self._probe_features(arm, s, p, f, False)
                    ytr = self.data["train_y"][self.shots(s, f)]
                    r = (centroid_accuracy(ftr, ytr, fte, self.ty, self.n_classes) if not cs
                         else probe_accuracy(ftr, ytr, [(fte, self.ty)], sel["C"])[0])
                    self.cache.put(key, r)
                row.append(r)
            table.append(row)
        return {"per_seed": table, "pretrain_seeds": [] if arm in (SCRATCH, *PIXEL_ARMS) else self.p_seeds(arm),
                "hyper": {"C": sel["C"], "val_top1": sel["val"], "candidates": {"C": cs}}}

    def kept_reports(self) -> None:
        """The data report of every reported cell's arm, from the cache where it is not loaded yet
        (an assembly from cached runs loads no network, and reports came with the networks)."""
        for _, arm, _, _ in self.cells:
            if arm not in self.reports and arm not in (SCRATCH, *PIXEL_ARMS):
                kept = self.cache.read_report(arm)
                if kept is not None:
                    self.reports[arm] = kept

    def config(self) -> dict:
        """results.json's ``config``: settings, target, split sizes, arms, pretrained networks, versions."""
        table = study_arms()
        arms = {a: (table[a].description if a in table else "raw-pixel baseline") for a in self.settings["arms"]}
        for arch, arm, _, _ in self.cells:  # what each network of a reported cell was, also when read from the cache
            for p in ([] if arm in (SCRATCH, *PIXEL_ARMS) else self.p_seeds(arm)):
                name = f"{arm}.p{p}" if arch == "resnet" else f"{arch}.{arm}.p{p}"
                if name not in self.pre_info and self.cache.weights(name).exists():
                    self.pre_info[name] = {k: v for k, v in self.cache.load_weights(name).items() if k != "state"}
        from .._version import __version__

        return {"settings": self.settings, "target": self.target, "target_source": self.data["source"],
                "classes": self.data["classes"], "pool": len(self.pool), "val": len(self.val_idx),
                "test": len(self.test_idx), "arms": arms, "pretrained": self.pre_info,
                "torch_threads": torch.get_num_threads(),
                "versions": {"fractaldb": __version__, "torch": str(torch.__version__)}}

    # -- the order of protocol v2, item 12 -------------------------------------------------------

    def plan(self) -> list:
        """``[(arch, arm, shots, protocol)]`` in the predeclared order of computation."""
        st = self.settings
        primary = primary_arm(study_arms())[0]
        small = [s for s in st["shots"] if small_shots(s)]
        large = [s for s in st["shots"] if not small_shots(s)]
        arms = st["arms"]
        first = [a for a in (SCRATCH, primary) if a in arms]
        out = [("resnet", a, s, "finetune") for s in small for a in first]
        out += [("resnet", a, s, "pixels") for s in small for a in arms if a in PIXEL_ARMS]
        out += [("resnet", a, s, "linear") for s in small for a in first]
        table = study_arms()
        rest = [a for a in arms if a not in (*first, *PIXEL_ARMS)]
        for a in sorted(rest, key=lambda a: not table[a].contrast):  # the contrast arms (Perlin) first
            out += [("resnet", a, s, proto) for s in small for proto in ("finetune", "linear")]
        for a in [a for a in arms if a in st["large_arms"]]:
            out += [("resnet", a, s, p) for s in large for p in ("finetune", "linear")]
        out += [("vit", a, s, "finetune") for s in st["vit_shots"] for a in st["vit_arms"]]
        return out

    def run_cell(self, arch: str, arm: str, s, proto: str) -> bool:
        """One cell computed (or read from the cache) into ``cells``; False when a run is missing
        with ``cached_only``."""
        try:
            cell = self.finetune_cell(arch, arm, s) if proto == "finetune" else self.probe_cell(arm, s)
        except Missing:
            return False
        self.cells[(arch, arm, s, proto)] = cell
        return True


def transfer_v2(out, target: str = "fashion-mnist", quick: bool = False, target_dir=None, arms=None, shots=None,
                seeds=None, threads=None, cached_only: bool = False, on_step=None, merge=()) -> dict:
    """Protocol v2 on ``target``: every cell of :meth:`StudyV2.plan` in order (cached runs reused,
    with ``cached_only`` nothing trained), ``OUT/results.json`` and ``results.md`` rewritten after
    each cell; the results (rows, contrasts, predictors, pending cells, config)."""
    from .arms import arm_families
    from .v2_tables import v2_predictors, v2_rows, write_v2

    t0, cpu0 = time.perf_counter(), time.process_time()
    settings = v2_settings(target, quick, arms, shots, seeds, cached_only, threads)
    before = torch.get_num_threads()
    torch.set_num_threads(settings["threads"])
    try:
        study = StudyV2(settings, out, target, target_dir, on_step, merge)
        primary = primary_arm(study_arms())[0]
        plan = study.plan()

        def assemble():
            study.kept_reports()
            rows, contrasts = v2_rows(study.cells, primary, target)
            return write_v2(study.out, {
                "protocol": "v2", "rows": rows, "contrasts": contrasts,
                "predictors": v2_predictors(rows, study.reports, arm_families()),
                "pending": ["/".join(str(x) for x in c) for c in plan if c not in study.cells],
                "config": {**study.config(), "arm_reports": study.reports, "families": arm_families()},
                "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1)})

        results = None
        for cell in plan:
            study.run_cell(*cell)
            if not cached_only:
                results = assemble()
        if cached_only or results is None:
            results = assemble()
        return results
    finally:
        torch.set_num_threads(before)
