"""Starting `dfsweep ui` in tests: a free loopback port, the server in its own process group with its output
in a file, and waiting until it serves."""
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EXE = str(Path(sys.executable).parent / "dfsweep")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(tmp_path: Path, port: int, *args: str) -> subprocess.Popen:
    """`dfsweep ui` (with `args`) in its own process group, its output to a file: the server logs every request,
    and a pipe nobody reads would fill and stall it."""
    with open(tmp_path / "ui.log", "w") as out:
        return subprocess.Popen([EXE, "ui", "--port", str(port), *args], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_url(url: str, proc: subprocess.Popen, log: Path, what: str, limit: float = 90) -> None:
    """Until `url` answers; fails (with the server's log) when `proc` ends or `limit` seconds pass."""
    deadline = time.time() + limit
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            assert proc.poll() is None and time.time() < deadline, \
                f"{what} not answering {url} after {limit:.0f} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)


def wait_until_serving(base: str, ui: subprocess.Popen, log: Path) -> None:
    wait_for_url(f"{base}/health", ui, log, "dfsweep ui")
    first = log.read_text().splitlines()[0]
    assert first.startswith("MLflow UI for ") and f" at {base} " in f"{first} ", first
