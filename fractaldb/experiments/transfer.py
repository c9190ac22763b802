"""``fractaldb experiment transfer``: the study's options checked, then its stages run in order --
every arm at the small shot counts, the large arms at the larger ones, the scaling study --
with results.json and results.md rewritten after each unit of work."""

from __future__ import annotations

import copy
import time

import torch

from ..errors import ConfigError
from ..stats import mean_std, paired_ci
from .arms import ARM_CLASSES, SCRATCH, primary_arm, resolve_presets, scaling_arms, study_arms
from .cache import Missing
from .plots import plots
from .protocol import TRANSFER_SETTINGS, Study
from .tables import assemble, predictors, write_results


def transfer_experiment(out, quick: bool = True, target: str = "fashion-mnist", target_dir=None,
                        seeds: int | None = None, arms=None, shots=None, scaling: bool | None = None,
                        threads: int | None = None, cached_only: bool = False, on_step=None,
                        merge=()) -> dict:
    """Run the transfer study and write ``results.json``, ``results.md`` and the plots into ``out``.

    Args:
        out: output folder (also holds ``cache/``: finished runs and pretrained weights, so an
            interrupted study resumes).
        quick: the ``quick`` settings instead of ``full`` (:data:`TRANSFER_SETTINGS`).
        target: ``fashion-mnist``, ``digits`` or ``imagefolder:PATH``.
        target_dir: where the Fashion-MNIST IDX files are (default :data:`FASHION_MNIST_DIR`).
        seeds: seeds at 10 and 100 shots (default: the settings'); larger counts use ``seeds_large``.
        arms: arms to run (default: the settings'; any registered family's arm); ``scratch`` is always added.
        shots: shot counts (ints or ``"all"``; default: the settings').
        scaling: run the scaling study (default: when the settings have one).
        cached_only: train nothing: tables and plots of the runs already in ``out``'s cache (an
            interrupted or partial study); what is missing is left out.  Missing data reports
            of the arms shown are still made (generate + ``fractaldb report``, seconds each).
        threads: PyTorch CPU threads during the study (default 1: on a small, shared CPU one thread per
            process does 3-4 times more work per CPU second than two with these tiny batches).
        on_step: ``on_step(message)`` before each unit of work.
        merge: output folders of other runs of the same study (the same per-run settings, target
            and version, e.g. arms split over several processes or machines) whose finished runs,
            pretrained weights and data reports are copied into ``out``'s cache first.

    Returns:
        ``{"rows": [...], "scaling": [...], "config": {...}, "seconds": ...}``.

    Raises:
        ConfigError: a bad option, an unknown arm or preset, or families that do not mark exactly
            one primary arm.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    table = study_arms()
    primary = primary_arm(table)[0]
    settings = _settings(quick, seeds, arms, shots, scaling, cached_only, threads, table)
    presets = resolve_presets(settings["arms"], table)  # every preset before any work: a missing one fails now
    scale_arms = scaling_arms(settings["scaling"], presets, table) if settings["scaling"] else {}
    threads = torch.get_num_threads()
    torch.set_num_threads(settings["threads"])
    try:
        study = Study(settings, out, target, target_dir, on_step, merge)
        return _Run(study, primary, t0, cpu0).run(presets, scale_arms)
    finally:
        torch.set_num_threads(threads)


def _settings(quick, seeds, arms, shots, scaling, cached_only, threads, table) -> dict:
    """A copy of the ``quick`` or ``full`` settings with the options applied (each checked)."""
    settings = copy.deepcopy(TRANSFER_SETTINGS["quick" if quick else "full"])
    if seeds is not None:
        if seeds <= 0:
            raise ConfigError(f"--seeds must be a positive integer, got {seeds}")
        settings["seeds"] = seeds
        settings["seeds_large"] = min(settings["seeds_large"], seeds)
    if arms is not None:
        arms = list(dict.fromkeys([SCRATCH, *arms]))
        for arm in arms:
            if arm not in table:
                raise ConfigError(f"unknown arm {arm!r}; choose from {', '.join(table)}")
        settings["arms"] = arms
        settings["large_arms"] = [a for a in settings["large_arms"] if a in arms]
    if shots is not None:
        for s in shots:
            if s != "all" and (not isinstance(s, int) or s <= 0):
                raise ConfigError(f"--shots takes positive integers or 'all', got {s!r}")
        settings["shots"] = list(shots)
    if scaling is False:
        settings["scaling"] = None
    settings["cached_only"] = bool(cached_only)
    if threads is not None:
        if threads <= 0:
            raise ConfigError(f"--threads must be a positive integer, got {threads}")
        settings["threads"] = threads
    return settings


class _Run:
    """The stages of one study, in order; results.json and results.md rewritten after each unit."""

    def __init__(self, study: Study, primary: str, t0: float, cpu0: float):
        self.study, self.primary, self.t0, self.cpu0 = study, primary, t0, cpu0
        self.scaling_rows = []

    def run(self, presets: dict, scale_arms: dict) -> dict:
        study = self.study
        self.main_stages(presets)
        for name, (dcfg, factor, cats) in scale_arms.items():
            if self.scaling_point(name, dcfg, factor, cats):
                self.write()
        config = study.config()
        config["arm_reports"] = study.reports
        rows = assemble(study.raw)
        emphasis = (SCRATCH, self.primary)
        return write_results(study.out, rows, self.scaling_rows, config, self.t0, self.cpu0,
                             plots=lambda out, results: plots(out, results, emphasis),
                             predictors=predictors(assemble(study.raw), study.reports))

    def write(self) -> dict:
        return write_results(self.study.out, assemble(self.study.raw), self.scaling_rows, self.study.config(),
                             self.t0, self.cpu0)

    def main_stages(self, presets: dict) -> None:
        """First every arm at the small shot counts (the study's main question), then the larger
        counts for the large arms (all arms when none are named)."""
        study, settings = self.study, self.study.settings
        arms_order = settings["arms"]
        small = [s for s in settings["shots"] if s != "all" and s <= 100]
        large = [s for s in settings["shots"] if s not in small]
        stages = [(arms_order, small),
                  ([a for a in arms_order if a in settings["large_arms"] or not settings["large_arms"]], large)]
        for stage_arms, shot_list in stages:
            # scratch last: the pretrained arms' runs come first (scratch's may come from another run's cache)
            for arm in sorted(stage_arms, key=lambda a: a == SCRATCH) if shot_list else []:
                if arm != SCRATCH and arm not in study.pretrained:
                    try:
                        self._pretrain(arm, presets[arm])
                    except Missing:
                        continue
                got = study.evaluate(arm, shot_list)
                if got:
                    study.raw.setdefault(arm, {}).update(got)
                self.write()

    def _pretrain(self, arm: str, dcfg: dict, factor: float = 1.0) -> None:
        study = self.study
        study.pretrained[arm] = study.pretrain(arm, dcfg, factor)
        study.pre_info[arm] = {k: v for k, v in study.pretrained[arm].items() if k != "state"}

    def scaling_point(self, name: str, dcfg: dict, factor: float, cats: int) -> bool:
        """One arm of the scaling study, its rows added (the primary arm at ``ARM_CLASSES`` categories is
        the primary arm's own runs); False when its pretraining is missing with ``cached_only``."""
        study = self.study
        sc_shots = study.settings["scaling"]["shots"]
        if name == f"{self.primary}-c{ARM_CLASSES}" and self.primary in study.raw:  # the main arm is this point
            raw_sc = {k: v for k, v in study.raw[self.primary].items() if k[0] in sc_shots}
        else:
            try:
                self._pretrain(name, dcfg, factor)
            except Missing:
                return False
            raw_sc = study.evaluate(name, sc_shots)
        for (s, proto), r in raw_sc.items():
            base = study.raw.get(SCRATCH, {}).get((s, proto))
            ci = paired_ci(r["per_seed"], base["per_seed"][:len(r["per_seed"])]) if base else None
            m, sd = mean_std(r["per_seed"])
            epochs = study.pre_info.get(name, study.pre_info.get(self.primary, {})).get("epochs")
            self.scaling_rows.append({"arm": name, "categories": cats, "epochs_factor": factor, "shots": s,
                                      "protocol": proto, "mean": m, "std": sd, "per_seed": r["per_seed"],
                                      "delta_vs_scratch": ci and ci["mean"], "ci95_low": ci and ci["ci95_low"],
                                      "ci95_high": ci and ci["ci95_high"], "pretrain_epochs": epochs})
        return True
