"""The search's analysis from a real Optuna study on disk: the PNGs it supports, one line for each it skips,
and never an exception."""
import matplotlib
import optuna
import pytest

from dfsweep.analysis import write_analysis

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tmp_path, n, vary=True, score=None):
    """A study named like the sweep, with the sweep's conditional shape (blur_p only with preset `seed`)."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(t):
        lr = t.suggest_float("train.lr", 1e-4, 1e-2, log=True) if vary else t.suggest_float("train.lr", 1e-3, 1e-3)
        if t.suggest_categorical("augment.preset", ["seed", "none"] if vary else ["seed"]) == "seed":
            t.suggest_float("augment.blur_p", 0.0, 0.5 if vary else 0.0)
        return 1.0 - abs(lr - 1e-3) if score is None else score
    study.optimize(objective, n_trials=n)
    return tmp_path / "optuna.db"


def _style():
    return {k: v for k, v in matplotlib.rcParams.items() if not k.startswith("backend")}


def test_a_varied_search_gives_all_three_plots(tmp_path):
    style = _style()
    out = write_analysis(_study(tmp_path, 6), "s", "auc", tmp_path / "analysis")
    names = ["importances.png", "parallel_coordinates.png", "history.png"]
    assert [p.name for p in out.written] == names
    for name in names:
        assert (tmp_path / "analysis" / name).read_bytes()[:8] == PNG
    assert out.lines == [f"analysis: {n[:-4].replace('_', ' ')} -> {tmp_path / 'analysis' / n}" for n in names]
    assert _style() == style                           # Optuna's plot style stays inside the analysis


def test_one_trial_gives_the_history_alone_and_says_why_not_the_others(tmp_path):
    out = write_analysis(_study(tmp_path, 1), "s", "auc", tmp_path / "analysis")
    assert [p.name for p in out.written] == ["history.png"]
    assert out.lines[:2] == ["analysis: no importances plot: needs 2 completed trials, has 1",
                             "analysis: no parallel coordinates plot: needs 2 completed trials, has 1"]


def test_no_varied_parameter_gives_the_history_alone(tmp_path):
    out = write_analysis(_study(tmp_path, 3, vary=False), "s", "auc", tmp_path / "analysis")
    assert [p.name for p in out.written] == ["history.png"]
    assert out.lines[:2] == [
        "analysis: no importances plot: no parameter that every completed trial has took two values",
        "analysis: no parallel coordinates plot: no parameter took two values"]


def test_the_same_score_everywhere_gives_no_importances(tmp_path):
    out = write_analysis(_study(tmp_path, 3, score=0.5), "s", "auc", tmp_path / "analysis")
    assert [p.name for p in out.written] == ["parallel_coordinates.png", "history.png"]
    assert out.lines[0] == "analysis: no importances plot: every completed trial has the same score"


def test_a_plot_that_fails_leaves_the_others(tmp_path, monkeypatch):
    import dfsweep.analysis as analysis
    draw = analysis._draw

    def failing(name, study, metric, *rest):
        if name == "parallel_coordinates":
            raise ValueError("no room to draw\nsecond line")
        return draw(name, study, metric, *rest)
    monkeypatch.setattr(analysis, "_draw", failing)
    out = write_analysis(_study(tmp_path, 4), "s", "auc", tmp_path / "analysis")
    assert [p.name for p in out.written] == ["importances.png", "history.png"]
    assert out.lines[1] == "analysis: no parallel coordinates plot: no room to draw"


def test_a_missing_study_or_file_is_one_line_and_no_file_is_created(tmp_path):
    db = _study(tmp_path, 2)
    assert write_analysis(db, "other", "auc", tmp_path / "a").lines == [
        f"analysis: skipped: no study 'other' in {db}"]
    missing = tmp_path / "none" / "optuna.db"
    assert write_analysis(missing, "s", "auc", tmp_path / "a").lines == [
        f"analysis: skipped: no Optuna study at {missing}"]
    assert not missing.exists() and not (tmp_path / "a").exists()


def test_a_study_without_completed_trials(tmp_path):
    optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    out = write_analysis(tmp_path / "optuna.db", "s", "auc", tmp_path / "analysis")
    assert out.written == [] and len(out.lines) == 3
    assert all(line.endswith(": no completed trial yet") for line in out.lines)
