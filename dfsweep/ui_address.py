"""Where `dfsweep ui` points: the newest sweep's runs in MLflow's model-training view, opened once the server answers."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
import webbrowser
from pathlib import Path
from typing import Callable, Optional

from .tracking import sweep_experiment_id

__all__ = ["newest_sweep", "runs_address", "open_when_serving"]

# MLflow 3.17's UI shows GenAI or model training by this switch (the URL's wins over the browser's last pick);
# the chart view puts the runs list beside the charts
VIEW = {"workflowType": "machine_learning", "compareRunsMode": "CHART"}


def newest_sweep(root: Path) -> Optional[str]:
    """The experiment of the sweep `root/latest` points at (its state.json), None when there is none yet."""
    latest = Path(root) / "latest"
    try:
        state = json.loads((latest / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state.get("experiment") or latest.resolve().name


def runs_address(base: str, tracking_uri: str, experiment: str) -> Optional[str]:
    """The address of `experiment`'s runs under the UI at `base`; None when the store has no such experiment."""
    experiment_id = sweep_experiment_id(tracking_uri, experiment)
    if experiment_id is None:
        return None
    return f"{base}/#/experiments/{experiment_id}/runs?{urllib.parse.urlencode(VIEW)}"


def _serving(base: str) -> bool:
    try:
        urllib.request.urlopen(f"{base}/health", timeout=2).close()
        return True
    except OSError:
        return False


def open_when_serving(base: str, address: str, opener: Callable[[str], bool] = webbrowser.open,
                      wait_s: float = 120.0) -> threading.Thread:
    """Open `address` once the server at `base` answers, from a daemon thread: the main thread waits on the
    server and forwards signals to it."""
    def wait_then_open() -> None:
        deadline = time.monotonic() + wait_s
        while not _serving(base):
            if time.monotonic() > deadline:
                print(f"dfsweep: the UI did not answer in {wait_s:.0f} s; open {address} yourself", flush=True)
                return
            time.sleep(0.5)
        if not opener(address):
            print(f"dfsweep: no browser found; open {address}", flush=True)

    thread = threading.Thread(target=wait_then_open, name="dfsweep-ui-open", daemon=True)
    thread.start()
    return thread
