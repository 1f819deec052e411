"""`dfsweep ui`: the MLflow UI over the sweeps' store, lean (1 worker, no job runner) and on loopback."""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Optional

from .children import run_forwarding_signals
from .tracking import default_tracking_uri

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


def serve_ui(port: int = 5000, host: str = "127.0.0.1", tracking_uri: Optional[str] = None) -> int:
    uri = tracking_uri or default_tracking_uri(Path("sweeps"))
    if not _is_loopback(host):
        print(f"dfsweep: warning: the UI listens on {host}, reachable from other machines; MLflow has no login",
              file=sys.stderr)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    shown = f"[{host}]" if ":" in host else host
    print(f"MLflow UI for {uri} at http://{shown}:{port}  (Ctrl-C or SIGTERM stops it)", flush=True)
    return run_forwarding_signals(ui_command(port, host, uri), env=env)
