import numpy as np
import pytest

from dfsweep.metrics import choose_threshold, score


def test_threshold_maximises_f1():
    y = [0, 0, 0, 1, 1, 0, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8]
    t = choose_threshold(y, s)
    # candidates: >=0.4 -> tp3 fp1 f1=.857 ; >=0.6 -> tp2 fp1 f1=.667 ; >=0.8 -> f1=.5
    assert t["threshold"] == pytest.approx(0.4)
    assert t["f1"] == pytest.approx(6 / 7)
    assert t["recall"] == pytest.approx(1.0)


def test_f1_ties_go_to_higher_recall():
    # threshold 0.9: tp1 fp0 fn1 -> P=1, R=.5, F1=2/3
    # threshold 0.5: tp2 fp2 fn0 -> P=.5, R=1, F1=2/3  (tie: must pick the higher recall)
    y = [1, 0, 0, 1]
    s = [0.9, 0.8, 0.7, 0.5]
    t = choose_threshold(y, s)
    assert t["f1"] == pytest.approx(2 / 3)
    assert t["recall"] == pytest.approx(1.0)
    assert t["threshold"] == pytest.approx(0.5)
    # mirror image ordering does not change the rule
    t2 = choose_threshold([1, 1, 0, 0, 1], [0.95, 0.9, 0.85, 0.8, 0.1])
    assert t2["recall"] >= 2 / 3


def test_min_precision_switches_to_best_recall_at_precision():
    y = [1, 0, 1, 0, 1, 1, 0, 0]
    s = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4]
    t = choose_threshold(y, s, min_precision=0.7)
    assert t["precision"] >= 0.7
    # at >=0.6: tp4 fp2 -> P=.667 (<.7); at >=0.7: tp3 fp2 -> .6 ; at >=0.85: tp2 fp1 -> .667; at .95 -> 1.0
    assert t["threshold"] == pytest.approx(0.95)
    assert t["recall"] == pytest.approx(0.25)


def test_min_recall_takes_the_most_precise_threshold_that_keeps_the_recall_floor():
    y = [1, 0, 1, 0, 1, 1, 0, 0]
    s = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4]
    # recall >= 0.75 needs >= 3 of 4 fakes: at 0.7 tp3 fp2 -> P .6; at 0.6 tp4 fp2 -> P .667 (the most precise)
    t = choose_threshold(y, s, min_recall=0.75)
    assert t["threshold"] == pytest.approx(0.6)
    assert t["recall"] == pytest.approx(1.0) and t["precision"] == pytest.approx(4 / 6)
    # a floor of 0.5: at 0.85 tp2 fp1 -> P .667 beats 0.7 (P .6); ties with 0.6 (P .667) -> higher recall
    assert choose_threshold(y, s, min_recall=0.5)["threshold"] == pytest.approx(0.6)
    assert choose_threshold(y, s, min_recall=0.25)["threshold"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="one threshold rule"):
        choose_threshold(y, s, min_precision=0.5, min_recall=0.5)


def test_score_reports_confusion_at_given_threshold():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.6, 0.4, 0.7, 0.9])
    m = score(y, s, threshold=0.5)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1, 1, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["auc"] == pytest.approx(5 / 6)


def test_single_class_labels_cannot_choose_threshold():
    with pytest.raises(ValueError):
        choose_threshold([0, 0, 0], [0.1, 0.2, 0.3])
