"""Samplers by name: TPE with Optuna's options for conditional spaces and parallel trials, and random."""
import warnings

import optuna
import pytest

from dfsweep.errors import DfsweepError
from dfsweep.samplers import SAMPLERS, build_sampler


def test_registry_names_and_types_without_experimental_warnings():
    assert SAMPLERS.names() == ["nsga2", "random", "tpe"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(build_sampler("tpe", 0), optuna.samplers.TPESampler)
        assert isinstance(build_sampler("random", 0), optuna.samplers.RandomSampler)
        assert isinstance(build_sampler("nsga2", 0), optuna.samplers.NSGAIISampler)
    with pytest.raises(DfsweepError, match="sweep.sampler: unknown sampler 'grid'"):
        build_sampler("grid", 0)


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_seeded_samplers_repeat_their_draws_on_a_conditional_space(name):
    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", "b"])
        x = trial.suggest_float(f"x_{kind}", 0, 1)            # a conditional parameter: TPE's group mode
        return x if kind == "a" else 1 - x

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=build_sampler(name, 3), direction="maximize")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=15)
        draws.append([t.params for t in study.trials])
    assert draws[0] == draws[1]


@pytest.mark.parametrize("name", ["tpe", "nsga2", "random"])
def test_every_sampler_searches_two_objectives(name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=build_sampler(name, 0), directions=["maximize", "maximize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("x", 0, 1)), n_trials=12)
    assert len(study.best_trials) >= 1 and all(len(t.values) == 2 for t in study.trials)
