"""A sweeps folder that cannot take a sweep's writes: one line and exit 2 before Ray starts or any trial runs.
Each fault is real: permission bits (root's run without the capability to override them), a file in the way, a write the kernel refuses
(RLIMIT_FSIZE) and free space from the folder's own statvfs."""
import ctypes
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfsweep.errors import DfsweepError
from dfsweep.storage import check_sweeps_folder
from tinydata import write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")


def test_a_writable_folder_passes_and_keeps_nothing(tmp_path):
    (tmp_path / "sweeps").mkdir()
    check_sweeps_folder(tmp_path / "sweeps")
    assert list((tmp_path / "sweeps").iterdir()) == []
    check_sweeps_folder(tmp_path / "absent" / "sweeps")     # probed where it would be created; nothing created
    assert list(tmp_path.iterdir()) == [tmp_path / "sweeps"]


def test_free_space_below_the_minimum_is_refused(tmp_path):
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    check_sweeps_folder(tmp_path, min_free_bytes=free // 2)
    with pytest.raises(DfsweepError, match=r"has \d+ MiB free .* needs at least \d+ MiB"):
        check_sweeps_folder(tmp_path, min_free_bytes=free + 2**30)


def test_a_file_where_the_sweeps_folder_goes_is_refused(tmp_path):
    (tmp_path / "sweeps").write_text("not a folder")
    with pytest.raises(DfsweepError, match="is a file, not a folder"):
        check_sweeps_folder(tmp_path / "sweeps")


def _space(folder: Path) -> Path:
    """A sweep that would run: without the check it would decode its data and start Ray before failing."""
    write_tiny_set(folder / "data", n_real=6, n_fake=3)
    cfg = {"data": {"train": str(folder / "data"), "image_size": 64, "cache_dir": str(folder / "cache")},
           "model": {"name": "deepfakenet", "width": 0.25},
           "search": {"train.lr": {"float": [1e-4, 1e-3], "log": True}}}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(folder: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "run", str(_space(folder)), "--name", "s"], cwd=folder, capture_output=True,
                          text=True, timeout=300, **kw)


def _assert_one_line_exit_2(r, needle: str, folder: Path) -> None:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("dfsweep: error: "), r.stderr
    assert needle in lines[0], lines[0]
    assert "data:" not in r.stdout and not (folder / "cache").exists()     # before decoding, before Ray
    assert not (folder / "sweeps" / "s").exists()


def _without_dac_override():
    """From exec on, root lacks the capabilities that let it write through permission bits (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH): dropped from the bounding set, which is all root's new program may hold."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:       # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_run_in_a_read_only_sweeps_folder_is_one_line_exit_2(tmp_path):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps").chmod(0o555)
    r = _run(tmp_path, **({"preexec_fn": _without_dac_override} if os.geteuid() == 0 else {}))
    _assert_one_line_exit_2(r, "cannot write to the sweeps folder sweeps", tmp_path)
    assert "Permission denied" in r.stderr


def test_run_where_a_file_is_in_the_sweeps_folders_place_is_one_line_exit_2(tmp_path):
    (tmp_path / "sweeps").write_text("a file where the sweeps folder goes")
    _assert_one_line_exit_2(_run(tmp_path), "is a file, not a folder", tmp_path)


def test_run_when_the_disk_takes_no_more_bytes_is_one_line_exit_2(tmp_path):
    """RLIMIT_FSIZE 0: every write that grows a file fails in the kernel (EFBIG), as on a full disk (ENOSPC)."""
    def no_file_growth():
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    (tmp_path / "sweeps").mkdir()
    r = _run(tmp_path, preexec_fn=no_file_growth)
    _assert_one_line_exit_2(r, "cannot write to the sweeps folder sweeps", tmp_path)
    assert "File too large" in r.stderr
    assert list((tmp_path / "sweeps").iterdir()) == []
