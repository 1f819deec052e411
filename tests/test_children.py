"""`dfsweep ui` (and any child dfsweep starts) ends with its server when dfsweep is told to end."""
import os
import signal
import socket
import time

import pytest

from proctools import processes_naming
from uitools import free_port, start_ui, wait_until_serving


def _listening(port: int) -> bool:
    """Something accepts connections on the port (a closed server's TIME_WAIT sockets do not count)."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_ui_told_to_end_takes_its_server_along_and_frees_the_port(tmp_path, sig):
    port = free_port()
    ui = start_ui(tmp_path, port)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", ui, tmp_path / "ui.log")
        os.kill(ui.pid, sig)                  # dfsweep alone, as `kill` or systemd would, not its group
        assert ui.wait(timeout=30) == 0
        deadline = time.time() + 10
        while (_listening(port) or processes_naming(str(port))) and time.time() < deadline:
            time.sleep(0.2)
        assert not _listening(port), f"port {port} still served after dfsweep ui ended"
        assert not processes_naming(str(port)), f"left behind: {processes_naming(str(port))}"
    finally:
        try:
            os.killpg(ui.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
