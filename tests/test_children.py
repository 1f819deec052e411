"""`dfsweep ui` (and any child dfsweep starts) ends with its server when dfsweep is told to end."""
import os
import signal
import socket
import time

import pytest

from uitools import free_port, start_ui, wait_until_serving


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_ui_told_to_end_takes_its_server_along_and_frees_the_port(tmp_path, sig):
    port = free_port()
    ui = start_ui(tmp_path, port)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", ui, tmp_path / "ui.log")
        os.kill(ui.pid, sig)                  # dfsweep alone, as `kill` or systemd would, not its group
        assert ui.wait(timeout=30) == 0
        deadline = time.time() + 5
        while not _port_free(port) and time.time() < deadline:
            time.sleep(0.2)
        assert _port_free(port), f"port {port} still held after dfsweep ui ended"
    finally:
        try:
            os.killpg(ui.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
