"""A CSV written as it is made: the output appears whole only at the end; an unfinished run is continued with
--resume, never silently overwritten, and never mixed with another run's rows."""
import pandas as pd
import pytest

from dfsweep.errors import DfsweepError
from dfsweep.partial_csv import PartialCsv

ME = {"model": "m.pth", "files": "abc"}


def _chunk(a, b):
    return pd.DataFrame({"id": [f"i{k}" for k in range(a, b)], "probability": [k / 10 for k in range(a, b)]})


def test_rows_land_in_the_output_only_when_complete(tmp_path):
    out = tmp_path / "p.csv"
    job = PartialCsv(out, ME)
    assert job.open(resume=False, restart=False) == 0
    job.append(_chunk(0, 3), done=3)
    assert not out.exists() and (tmp_path / ".p.csv.partial").is_file()
    job.append(_chunk(3, 5), done=5)
    assert job.finish() == 5
    assert pd.read_csv(out)["id"].tolist() == [f"i{k}" for k in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_an_interrupted_run_is_resumed_not_overwritten(tmp_path):
    out = tmp_path / "p.csv"
    job = PartialCsv(out, ME)
    job.open(False, False)
    job.append(_chunk(0, 3), done=4)                     # 4 files done, one of them skipped as bad
    with open(tmp_path / ".p.csv.partial", "a") as f:    # a chunk cut off by the kill, after its record
        f.write("i3,0.3\ni4,0.")
    with pytest.raises(DfsweepError, match="an unfinished run is there .4 inputs done.; --resume continues it"):
        PartialCsv(out, ME).open(resume=False, restart=False)
    with pytest.raises(DfsweepError, match="had another files"):
        PartialCsv(out, {**ME, "files": "xyz"}).open(resume=True, restart=False)
    again = PartialCsv(out, ME)
    assert again.open(resume=True, restart=False) == 4
    again.append(_chunk(3, 6), done=7)
    assert again.finish() == 6
    assert pd.read_csv(out)["id"].tolist() == [f"i{k}" for k in range(6)]


def test_resume_with_nothing_to_resume_and_restart(tmp_path):
    out = tmp_path / "p.csv"
    with pytest.raises(DfsweepError, match="--resume: nothing to resume"):
        PartialCsv(out, ME).open(resume=True, restart=False)
    job = PartialCsv(out, ME)
    job.open(False, False)
    job.append(_chunk(0, 2), done=2)
    fresh = PartialCsv(out, ME)
    assert fresh.open(resume=False, restart=True) == 0
    fresh.append(_chunk(7, 8), done=1)
    fresh.finish()
    assert pd.read_csv(out)["id"].tolist() == ["i7"]
