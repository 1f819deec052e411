"""Optuna samplers by name (`sweep.sampler`; the function name is the YAML value).

* `tpe`: TPE over the joint space (`multivariate`), split into the sub-spaces a conditional space actually
  samples (`group`), with a constant liar for trials still running, so parallel trials do not all sample
  next to the same incumbent. Optuna's own options for conditional spaces and parallel trials.
* `random`: independent uniform draws, the baseline a search must beat.
* `nsga2`: Optuna's NSGA-II, the evolutionary sampler made for multi-objective searches (`sweep.objectives`);
  TPE handles several objectives too.
"""
from __future__ import annotations

import warnings

from .registry import Registry

__all__ = ["SAMPLERS", "build_sampler"]

SAMPLERS = Registry("sampler")


@SAMPLERS.register
def tpe(seed: int):
    import optuna
    with warnings.catch_warnings():  # `multivariate`, `group` and `constant_liar` are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


@SAMPLERS.register
def random(seed: int):
    import optuna
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register
def nsga2(seed: int):
    import optuna
    return optuna.samplers.NSGAIISampler(seed=seed)


def build_sampler(name: str, seed: int):
    return SAMPLERS.get(name, "sweep.sampler")(seed=seed)
