"""Metric specs: names on other sets, weighted means, worst cases; their keys and MLflow names."""
import math

import pytest

from dfsweep.errors import DfsweepError
from dfsweep.metric_spec import interval_keys, mlflow_name, parse_metric


def test_a_name_on_another_set_reads_its_own_column():
    spec = parse_metric("auc@ciplab")
    assert spec.key == "auc@ciplab" and spec.val_sets() == {"ciplab"}
    assert spec.value({"auc": 0.9, "auc@ciplab": 0.55}) == 0.55


def test_weighted_mean_and_worst_case():
    m = {"auc": 0.9, "auc@ciplab": 0.5, "auc@other": 0.7}
    mean = parse_metric({"mean": {"auc": 3, "auc@ciplab": 1}})
    assert mean.value(m) == pytest.approx((3 * 0.9 + 0.5) / 4)
    assert mean.key == "mean(3*auc,1*auc@ciplab)"
    equal = parse_metric({"mean": ["auc", "auc@ciplab"]})
    assert equal.value(m) == pytest.approx(0.7) and equal.key == "mean(auc,auc@ciplab)"
    worst = parse_metric({"min": ["auc", "auc@ciplab", "auc@other"]})
    assert worst.value(m) == 0.5 and worst.key == "min(auc,auc@ciplab,auc@other)"
    assert worst.val_sets() == {"ciplab", "other"}
    assert parse_metric(worst.raw()) == worst and parse_metric(mean.raw()) == mean


def test_a_missing_or_nan_term_makes_the_value_nan():
    worst = parse_metric({"min": ["auc", "auc@ciplab"]})
    assert math.isnan(worst.value({"auc": 0.9}))
    assert math.isnan(worst.value({"auc": 0.9, "auc@ciplab": float("nan")}))


@pytest.mark.parametrize("raw, needle", [
    ("aucc", "unknown metric 'aucc'"),
    ("auc@", "names no validation set"),
    ("auc@a b", "names no validation set"),
    ({"mean": {"auc": 0}}, "a weight must be a number > 0"),
    ({"mean": {"auc": 1}}, "needs at least two metrics"),
    ({"min": ["auc", "auc"]}, "a metric is named twice"),
    ({"min": ["auc", "val_loss"]}, "unknown metric 'val_loss'"),
    ({"max": ["auc", "f1"]}, "expected a metric name"),
    ({"min": "auc"}, "expected a list of metric names"),
    (3, "expected a metric name"),
])
def test_bad_specs_are_one_line_naming_the_key(raw, needle):
    with pytest.raises(DfsweepError) as e:
        parse_metric(raw, "sweep.metric")
    assert str(e.value).startswith("sweep.metric") and needle in str(e.value) and "\n" not in str(e.value)


def test_every_key_becomes_a_name_mlflow_accepts():
    from mlflow.utils.validation import _validate_metric_name   # the validator MLflow's client runs
    for key in ("auc@ciplab", "auc_lo@ciplab", "min(auc,auc@ciplab)", "mean(3*auc,1*auc@x-y)",
                "stage1_val_loss@other"):
        _validate_metric_name(mlflow_name(key))
    assert mlflow_name("auc@ciplab") == "auc_at_ciplab"


def test_interval_keys_follow_the_set():
    assert interval_keys("auc") == ("auc_lo", "auc_hi")
    assert interval_keys("f1@ciplab") == ("f1_lo@ciplab", "f1_hi@ciplab")
