"""The decode tasks a sweep runs on every node stay small: they import Pillow and numpy, not torch. (Decoding
and copying shards on a real two-node cluster: tests/test_cluster.py; a killed decode resumed under a memory
limit: tests/test_out_of_core.py.)"""
import subprocess
import sys


def test_a_decode_task_imports_no_torch():
    code = ("import sys, dfsweep.data.cluster_cache, dfsweep.data.cache; "
            "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'optuna') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
