"""Diagnostic, not part of protocol v2: does the study's ViT learn FractalDB with another pretraining recipe?

Protocol v2 pretrains the ViT with the ResNet's recipe (SGD, lr 0.1, momentum 0.9, one warm-up epoch,
cosine; 6 epochs of 3,200 images), and its FractalDB networks end at chance (docs/training.md). This
pretrains the same network on the same images (pretraining seed 0) with the v2 recipe and three others,
and prints the final training top-1 of each: nothing here touches a target's validation or test data.

    python docs/results/vit_pretraining_check.py --out /tmp/vitcheck
"""

from __future__ import annotations

import argparse

import torch

from fractaldb.experiments.v2 import StudyV2, v2_settings
from fractaldb.train import create_model, fit, tensor_source

RECIPES = {"v2 (SGD lr 0.1)": {},
           "SGD lr 0.01": {"lr": 0.01},
           "AdamW lr 1e-3, wd 0.05": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05},
           "AdamW lr 1e-3, wd 0.05, 5x the epochs": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
                                                     "epochs_times": 5}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a new folder for the study's cache")
    args = ap.parse_args()
    torch.set_num_threads(1)
    study = StudyV2(v2_settings("fashion-mnist", False, ["fractaldb"], [10]), args.out, "fashion-mnist")
    images, labels = study._arm_data("fractaldb", study.presets["fractaldb"], False)
    name, kw = study.arch("vit")
    for title, change in RECIPES.items():
        change = dict(change)
        times = change.pop("epochs_times", 1)
        cfg = {**study.pre_base, "arch": name, "seed": 0,
               "epochs": times * max(1, round(study.settings["presentations"] / len(labels))), **change}
        src = tensor_source(images, labels, cfg, study.rt, True, name="fractaldb")
        model = create_model(name, src.num_classes, 0, **kw)
        res = fit(cfg, study.rt, model, src)
        print(f"{title}: {cfg['epochs']} epochs, final training top-1 {res['last']['top1']:.2f} % "
              f"(chance {100 / src.num_classes:.2f} %), loss {res['last']['loss']:.3f}", flush=True)


if __name__ == "__main__":
    main()
