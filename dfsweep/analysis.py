"""The search's own analysis from its Optuna study (sweeps/<name>/optuna.db): parameter importances,
parallel coordinates and the optimisation history, drawn by optuna.visualization.matplotlib as PNGs. A
multi-objective study gets its Pareto front, and importances and parallel coordinates per objective.

A plot the study cannot support yet (too few completed trials, no parameter that varied) is skipped with one
line saying why; nothing here raises, so the end of a sweep never fails on its analysis.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

__all__ = ["Analysis", "write_analysis", "PLOTS"]

PLOTS = ("importances", "parallel_coordinates", "history")    # each saved as <name>.png


@dataclass
class Analysis:
    written: List[Path] = field(default_factory=list)
    lines: List[str] = field(default_factory=list)     # one per plot: where it went, or why it was skipped


def _one_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _varied(trials, common: bool) -> List[str]:
    """Parameters with more than one value over `trials` (`common`: only those every trial has, which is what
    the importance evaluator takes)."""
    names = [set(t.params) for t in trials]
    pool = set.intersection(*names) if common else set.union(*names)
    return sorted(p for p in pool if len({repr(t.params.get(p)) for t in trials if p in t.params}) > 1)


def _needs(name: str, done, index: Optional[int] = None) -> Optional[str]:
    """Why plot `name` cannot be made from the completed trials `done` (None: it can)."""
    if not done:
        return "no completed trial yet"
    if name in ("history", "pareto_front"):
        return None
    if len(done) < 2:
        return f"needs 2 completed trials, has {len(done)}"
    if not _varied(done, common=name == "importances"):
        return ("no parameter that every completed trial has took two values" if name == "importances"
                else "no parameter took two values")
    if name == "importances" and len({t.value if index is None else t.values[index] for t in done}) < 2:
        return "every completed trial has the same score"
    return None


def _draw(name: str, study, metric: str, index: Optional[int] = None, names: Tuple[str, ...] = ()):
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as ov
    target = None if index is None else (lambda t: t.values[index])
    if name == "pareto_front":
        return ov.plot_pareto_front(study, target_names=list(names))
    if name == "importances":   # seeded: the same study gives the same picture
        return ov.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), target=target,
                                         target_name=metric)
    if name == "parallel_coordinates":
        return ov.plot_parallel_coordinate(study, target=target, target_name=metric)
    return ov.plot_optimization_history(study, target_name=metric)


def _jobs(metric: Any) -> List[Tuple[str, str, str, Optional[int]]]:
    """(file stem, plot, target name, objective index) for a one-objective sweep (`metric` a name) or a
    multi-objective one (`metric` a Scoring with objectives)."""
    objectives = [o.key for o in getattr(metric, "objectives", ())]
    if not objectives:
        key = getattr(metric, "key", metric)
        return [(name, name, key, None) for name in PLOTS]
    jobs = [("pareto_front", "pareto_front", "", None)]
    for i, key in enumerate(objectives):
        jobs += [(f"{name}_{key}", name, key, i) for name in ("importances", "parallel_coordinates")]
    return jobs


def _study(db: Path, study_name: str) -> Tuple[object, list]:
    """The study and its completed trials; a missing file is not created (RDBStorage would make an empty one)."""
    import optuna
    if not Path(db).is_file():
        raise FileNotFoundError(f"no Optuna study at {db}")
    try:
        study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{Path(db).resolve()}")
    except KeyError:
        raise LookupError(f"no study {study_name!r} in {db}") from None
    return study, study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def write_analysis(db: Path, study_name: str, metric: Any, out_dir: Path) -> Analysis:
    """<out_dir>/<plot>.png for each of PLOTS the study supports (for a multi-objective sweep's Scoring: the
    front, and each objective's importances and parallel coordinates); the lines say what was made or skipped."""
    out = Analysis()
    try:
        import matplotlib
        matplotlib.use("Agg")   # no display on servers; before optuna's plotting module imports pyplot
        # the plots' own warnings (an experimental backend, axis limits) and Optuna's plot style stay in here
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore")
            study, done = _study(db, study_name)
            names = tuple(o.key for o in getattr(metric, "objectives", ()))
            for stem, name, target, index in _jobs(metric):
                _one_plot(stem, name, study, done, target, index, names, Path(out_dir), out)
    except Exception as e:  # noqa: BLE001 -- an analysis must not fail the sweep's end
        out.lines.append(f"analysis: skipped: {_one_line(e)}")
    return out


def _one_plot(stem: str, name: str, study, done, metric: str, index: Optional[int], names: Tuple[str, ...],
              out_dir: Path, out: Analysis) -> None:
    what = name.replace("_", " ") + (f" ({metric})" if index is not None else "")
    why = _needs(name, done, index)
    if why:
        out.lines.append(f"analysis: no {what} plot: {why}")
        return
    import matplotlib.pyplot as plt
    try:
        ax = _draw(name, study, metric, index, names)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stem}.png"
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
        out.written.append(path)
        out.lines.append(f"analysis: {what} -> {path}")
    except Exception as e:  # noqa: BLE001 -- one plot that fails leaves the others
        out.lines.append(f"analysis: no {what} plot: {_one_line(e)}")
    finally:
        plt.close("all")
