"""`dfsweep ui`: the MLflow UI over the sweeps' store, lean (1 worker, no job runner) and on loopback; it prints
(and with --open opens) where the newest sweep's runs are."""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Optional

from .children import run_forwarding_signals
from .tracking import default_tracking_uri
from .ui_address import newest_sweep, open_when_serving, runs_address

__all__ = ["serve_ui", "ui_command"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ui_command(port: int, host: str, tracking_uri: str) -> list[str]:
    """argv for the MLflow server (a list: no shell, nothing built from user strings)."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    if tracking_uri.startswith("sqlite:"):
        cmd += ["--default-artifact-root", (Path("sweeps") / "mlartifacts").resolve().as_uri()]
    return cmd


def serve_ui(port: int = 5000, host: str = "127.0.0.1", tracking_uri: Optional[str] = None,
             open_browser: bool = False) -> int:
    uri = tracking_uri or default_tracking_uri(Path("sweeps"))
    if not _is_loopback(host):
        print(f"dfsweep: warning: the UI listens on {host}, reachable from other machines; MLflow has no login",
              file=sys.stderr)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(f"MLflow UI for {uri} at {base}  (Ctrl-C or SIGTERM stops it)", flush=True)
    address = _sweep_address(base, uri)
    if open_browser:
        open_when_serving(base, address or base)
    return run_forwarding_signals(ui_command(port, host, uri), env=env)


def _sweep_address(base: str, uri: str) -> Optional[str]:
    """The newest sweep's runs, printed; None without a sweep or when the store does not hold it."""
    name = newest_sweep(Path("sweeps"))
    if name is None:
        return None
    try:
        address = runs_address(base, uri, name)
    except Exception as e:  # noqa: BLE001 -- the address is a convenience: the UI starts without it
        print(f"dfsweep: warning: sweep {name} not looked up in {uri}: {str(e).strip()[:200]}", file=sys.stderr)
        return None
    if address is None:
        print(f"dfsweep: warning: sweep {name} has no experiment in {uri}", file=sys.stderr)
    else:
        print(f"sweep {name}: {address}", flush=True)
    return address
