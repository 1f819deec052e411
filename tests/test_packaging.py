"""What `pip install .` carries: every third-party module the package imports is a declared dependency whose
lower bound the installed (tested) version meets, every subpackage and the shipped search spaces are in the
wheel, and a non-editable install runs a shipped space by name."""
import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# import name -> distribution name, where they differ
DIST = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn"}


def _third_party_imports() -> set:
    names = set()
    for path in (ROOT / "dfsweep").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("dfsweep", "__future__")}


def _requirements() -> dict:
    return {Requirement(r).name.lower(): Requirement(r) for r in PROJECT["project"]["dependencies"]}


def test_every_imported_module_is_a_declared_dependency():
    declared = _requirements()
    missing = sorted(n for n in _third_party_imports() if DIST.get(n, n).lower() not in declared)
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def test_installed_versions_meet_every_lower_bound_and_each_has_one():
    for name, req in _requirements().items():
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound"
        version = metadata.version(name)
        assert req.specifier.contains(version, prereleases=True), f"{name} {version} does not meet {req}"


def test_every_subpackage_is_packaged():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dfsweep").rglob("__init__.py")}
    assert found | {"dfsweep.search_spaces"} == set(PROJECT["tool"]["setuptools"]["packages"])


@pytest.mark.slow
def test_a_non_editable_install_runs_a_shipped_space_by_name(tmp_path):
    """`pip install .` (not editable) into a scratch venv that borrows this venv's dependencies, then
    `dfsweep run deepfakenet` from an empty folder: the YAML comes from the installed package."""
    src = tmp_path / "src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "dfsweep", "search_spaces"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(
            ROOT / part, src / part, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / part).is_dir() else {}))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")   # the dependencies, not dfsweep
    # --ignore-installed: without it pip would first uninstall this checkout's own (editable) dfsweep
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                        "--ignore-installed", "--prefix", str(venv), str(src)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    where = subprocess.run([venv / "bin" / "python", "-c", "import dfsweep; print(dfsweep.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where          # the installed copy, not this checkout
    assert (Path(sys.executable).parent / "dfsweep").is_file()    # and this environment's install untouched
    # the console script, run by the scratch venv's Python (pip wrote this interpreter's path into its #!)
    dfsweep = [venv / "bin" / "python", venv / "bin" / "dfsweep"]
    r = subprocess.run([*dfsweep, "run", "deepfakenet", "--set", "sweep.num_samples=2",
                        "--set", "train.epochs=1", "--set", "sweep.confirm.top_k=0", "--set", "data.image_size=64"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    latest = (work / "sweeps" / "latest").resolve()
    assert latest.name.startswith("deepfakenet-") and (latest / "leaderboard.csv").is_file()
    r = subprocess.run([*dfsweep, "status"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "FINISHED" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    r = subprocess.run([*dfsweep, "run", "nope"], cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "shipped spaces: architectures, deepfakenet" in r.stderr
