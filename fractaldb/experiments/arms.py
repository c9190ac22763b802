"""The transfer study's arms, collected from the family registry.

An arm is pretraining data: a preset and its ``--set`` overrides (a
:class:`~fractaldb.families.base.StudyArm`).  Each family package lists its own
arms (``Family.study_arms``, from its ``study.py``); this module only adds the
generic ``scratch`` arm (no pretraining) and reads the registry when asked, so a
family registered later -- one from another package too -- joins by itself.
Arms are listed scratch first, then the primary arm, then the others in the
registry's family order (:func:`fractaldb.families.list_families`).  Exactly one arm is the
**primary** arm (``primary=True``): the arm the study's main claims are about,
run at every shot count of the full study and scaled by the scaling study.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError
from ..families import get_family, list_families
from ..families.base import StudyArm

#: The arm without pretraining: every other arm is compared with it.
SCRATCH = "scratch"
_SCRATCH_ARM = StudyArm(None, (), "no pretraining: the network's random initialisation")

#: The classes of every arm (docs/training.md); the scaling study's point at this many classes is
#: the primary arm itself.
ARM_CLASSES = 32


def study_arms() -> dict:
    """``{arm: StudyArm}``: scratch, the primary arm, then the other families' arms in the
    registry's family order (a family's own in the order it lists them).

    Raises:
        ConfigError: two families (or a family and scratch) give the same arm name.
    """
    table, owner = {SCRATCH: _SCRATCH_ARM}, {SCRATCH: "the study"}
    for family in list_families():
        for arm, spec in get_family(family).study_arms.items():
            if arm in table:
                raise ConfigError(f"the {family} family's study arm {arm!r} is already an arm of {owner[arm]}; "
                                  "give it another name (a family class that inherits another's study_arms "
                                  "sets its own, e.g. study_arms = {})")
            table[arm], owner[arm] = spec, f"the {family} family"
    first = [arm for arm, spec in table.items() if spec.primary][:1]  # primary_arm() reports 0 or 2
    return {a: table[a] for a in [SCRATCH, *first, *(a for a in table if a not in (SCRATCH, *first))]}


def primary_arm(table: dict) -> tuple:
    """``(name, StudyArm)`` of the one arm marked ``primary``.

    Raises:
        ConfigError: no arm, or more than one, is marked primary.
    """
    found = [arm for arm, spec in table.items() if spec.primary]
    if len(found) != 1:
        raise ConfigError(f"the transfer study needs exactly one primary arm (StudyArm(..., primary=True)) among "
                          f"the families' study_arms, found {len(found)}{': ' + ', '.join(found) if found else ''}; "
                          "mark exactly one")
    return found[0], table[found[0]]


def quick_arms(table: dict) -> list:
    """The ``--quick`` study's arms: scratch, the primary arm and the arms marked ``quick``."""
    primary = primary_arm(table)[0]
    return [arm for arm, spec in table.items() if arm in (SCRATCH, primary) or spec.quick]


def large_arms(table: dict) -> list:
    """The arms run at the larger shot counts of the full study: scratch and the primary arm."""
    return [SCRATCH, primary_arm(table)[0]]


def resolve_presets(arms: list, table: dict) -> dict:
    """``{arm: resolved config}`` of every arm that pretrains, resolved before any work (a
    missing preset fails now, naming the arm)."""
    from .. import config

    presets = {}
    for arm in arms:
        spec = table[arm]
        if spec.preset is None:
            continue
        try:
            presets[arm] = config.resolve(spec.preset, spec.overrides)
        except ConfigError as exc:
            raise ConfigError(f"arm {arm!r} needs preset {spec.preset!r}: {exc}") from None
    return presets


def scaling_arms(scaling: dict, presets: dict, table: dict) -> dict:
    """The scaling study's arms, ``{name: (resolved config, epochs factor, classes)}``: the primary
    arm's ``scaled(classes)`` at each of ``scaling["categories"]`` (``PRIMARY-cN``) and the primary
    arm itself at each pretraining-epochs factor other than 1 (``PRIMARY-eF``)."""
    from .. import config

    name, spec = primary_arm(table)
    if spec.scaled is None:
        raise ConfigError(f"the scaling study needs the primary arm {name!r} to have scaled=...; "
                          "run without it (--no-scaling)")
    out = {}
    for c in scaling["categories"]:
        arm = spec.scaled(c)
        out[f"{name}-c{c}"] = (config.resolve(arm.preset, arm.overrides), 1.0, c)
    for f in scaling["epochs_factor"]:
        if f != 1:
            out[f"{name}-e{f:.2g}"] = (presets.get(name) or config.resolve(spec.preset, spec.overrides), f,
                                       ARM_CLASSES)
    return out


class ArmTable(Mapping):
    """``{arm: (preset, overrides, description)}``: :func:`study_arms` as the ``ARMS`` table has
    always read (overrides as a list), read from the registry at each use.  Read-only: arms
    are changed in their family's ``study.py``."""

    def __getitem__(self, arm):
        spec = study_arms()[arm]
        return spec.preset, list(spec.overrides), spec.description

    def __iter__(self):
        return iter(study_arms())

    def __len__(self):
        return len(study_arms())

    def __repr__(self):
        return f"ArmTable({dict(self)!r})"


def arm_families() -> dict:
    """``{arm: family}`` of every family's study arm (the leave-one-family-out unit)."""
    return {arm: family for family in list_families() for arm in get_family(family).study_arms}
