"""`dfsweep ui` in a real browser: a real tiny sweep, the MLflow server it starts, headless Chromium.

The address `dfsweep ui --open` prints and opens shows the sweep in MLflow's model-training view (not the
GenAI overview): its parent run with the trials collapsed under it, a chart of each trial's validation AUC
by epoch, and every trial once the parent is expanded; all read from the rendered page, not the REST API.
A screenshot is kept as a test artifact (`$DFSWEEP_TEST_ARTIFACTS`, else the test's tmp_path).
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tinydata import write_tiny_set
from uitools import free_port, start_ui, wait_until_serving

# Debian's chromium and chromium-driver (.ci/system-deps); named explicitly so Selenium Manager never
# tries to download a browser or a driver
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                       reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian chromium, chromium-driver; "
                              "bash .ci/system-deps installs them)"),
]

EXE = str(Path(sys.executable).parent / "dfsweep")
WAIT_S = 60  # a 2-core machine rendering MLflow's React app while the server warms up


def _tiny_sweep(tmp_path: Path, name: str) -> Path:
    """Two 2-epoch trials on 32 tiny images: the smallest sweep that still has a parent and children."""
    data = write_tiny_set(tmp_path / "data", n_real=24, n_fake=8)
    space = {
        "data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
        "sweep": {"confirm": {"top_k": 0}, "num_samples": 2, "max_concurrent_trials": 2, "metric": "auc", "seed": 3,
                  "scheduler": {"name": "fifo"}},
        "search": {"train.lr": {"float": [1e-4, 3e-3], "log": True}},
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    r = subprocess.run([EXE, "run", str(path), "--name", name], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp_path / "sweeps" / name


def _chromium(profile: Path) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1600,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def _shown(driver, xpath: str):
    """The first element matching `xpath`, scrolled into view (the runs grid renders only what it shows)
    and visible; None until then (a WebDriverWait condition)."""
    for el in driver.find_elements(By.XPATH, xpath):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        if el.is_displayed():
            return el
    return None


def _href(driver, xpath: str):
    el = _shown(driver, xpath)
    return el.get_attribute("href") if el is not None else None


def _click(driver, xpath: str) -> bool:
    el = _shown(driver, xpath)
    if el is None or not el.is_enabled():
        return False
    el.click()
    return True


def _running(pgid: int, marker: str) -> list:
    """Live processes (zombies excluded) in process group `pgid` or with `marker` in their command line,
    from /proc: what this test started and has not yet seen go."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            state, _, pgrp = (d / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # not a process, or one that just ended
        if state != "Z" and (int(pgrp) == pgid or marker in cmd):
            found.append(f"{d.name}: {cmd[:150]}")
    return found


def _stop(ui: subprocess.Popen, marker: str) -> list:
    """SIGTERM to `dfsweep ui`'s group (it and the MLflow server under it), SIGKILL after 30 s; waits until
    neither they nor Chromium (`marker`: its profile) run, and returns what still does after that."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(ui.pid, sig)
        except ProcessLookupError:
            pass
        end = time.time() + grace
        while time.time() < end:
            ui.poll()  # reap `dfsweep ui`; the server, orphaned, is reaped by init
            if not _running(ui.pid, marker):
                return []
            time.sleep(0.2)
    return _running(ui.pid, marker)


def _run_link(run_name: str) -> str:
    return f"//a[contains(@href, '/runs/')][normalize-space(.)='{run_name}']"


def _auc_chart(trial: str) -> str:
    """A chart card titled with the parent's metric for `trial`, holding a plotted line."""
    return (f"//*[@data-testid='experiment-view-compare-runs-card'][.//*[@title='val_auc/{trial}']]"
            "//*[local-name()='path'][contains(@class, 'js-line')]")


def _printed_address(log: Path, sweep: str) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith(f"sweep {sweep}: ")]
    assert lines, f"dfsweep ui printed no address for {sweep}:\n{log.read_text()[-3000:]}"
    return lines[0].split(": ", 1)[1]


def _recording_browser(tmp_path: Path) -> tuple:
    """A BROWSER command for Python's webbrowser that writes the address it is given to a file."""
    script, opened = tmp_path / "browser.py", tmp_path / "opened.txt"
    script.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    return f"{sys.executable} {script} %s", opened


def test_ui_opens_on_the_sweep_its_trials_and_their_auc_charts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never reach the network
    browser, opened = _recording_browser(tmp_path)
    monkeypatch.setenv("BROWSER", browser)
    sweep = _tiny_sweep(tmp_path, "demo-sweep")
    parent_id = json.loads((sweep / "state.json").read_text())["parent_run_id"]
    with open(sweep / "leaderboard.csv", newline="") as f:
        trials = [row["trial_id"] for row in csv.DictReader(f)]  # each trial's run is named by its id
    assert len(trials) == 2

    artifacts = Path(os.environ.get("DFSWEEP_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "mlflow-ui.png"
    shot.unlink(missing_ok=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    profile = tmp_path / "chromium-profile"
    ui = start_ui(tmp_path, port, "--open")
    driver = None
    try:
        wait_until_serving(base, ui, tmp_path / "ui.log")
        driver = _chromium(profile)
        # the runs grid re-renders as its data arrives: every lookup re-finds its element inside a wait,
        # so a row replaced between finding and using it is looked up again rather than failing the test
        wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.5,
                             ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException))

        # 1. the address printed, and the one --open gave the browser: the sweep's runs
        address = _printed_address(tmp_path / "ui.log", "demo-sweep")
        assert address.startswith(f"{base}/#/experiments/")
        wait.until(lambda d: opened.is_file() and opened.read_text() == address, "--open opened no browser there")

        # 2. there, the model-training view: the parent run in the runs list and the side navigation's
        #    runs tab, no GenAI overview
        driver.get(address)
        parent_href = wait.until(lambda d: _href(d, _run_link("demo-sweep")), "the runs list shows no parent run")
        assert parent_href.endswith(f"/runs/{parent_id}")
        runs_tab = address.split("#", 1)[1].split("?", 1)[0]
        assert _shown(driver, f"//a[contains(@href, '{runs_tab}')][not(contains(@href, '/runs/'))]") is not None
        assert "/overview" not in driver.current_url
        assert not driver.find_elements(By.XPATH, "//a[contains(@href, '/overview')]"), "the GenAI navigation shown"
        for t in trials:  # nested: collapsed under the parent, not listed beside it
            assert _shown(driver, _run_link(t)) is None, f"trial {t} shown before its parent was expanded"

        # 3. the parent's charts: each trial's validation AUC by epoch, a plotted line
        for t in trials:
            wait.until(lambda d, t=t: _shown(d, _auc_chart(t)), f"no chart of trial {t}'s AUC")

        # 4. expand the parent (the +/- button in its Run Name cell): every trial appears
        wait.until(lambda d: _click(d, _run_link("demo-sweep") + "/ancestor::div[@role='gridcell'][1]//button"),
                   "the parent run has no expand button")
        for t in trials:
            wait.until(lambda d, t=t: (el := _shown(d, _run_link(t))) is not None and el.text == t,
                       f"trial {t} not shown under the expanded parent")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "demo-sweep" in body and all(t in body for t in trials)
    finally:
        if driver is not None:
            try:
                driver.save_screenshot(str(shot))  # kept on failure too: it shows what the page did show
            finally:
                driver.quit()  # ends chromedriver too, waiting for it
        left = _stop(ui, str(profile))
    assert not left, f"still running after the test: {left}"

    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, f"{shot}: {len(png)} bytes"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 1000 and height >= 600, (width, height)
