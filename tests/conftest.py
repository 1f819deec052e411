"""Shared fixtures: tiny real image folders and configs in tmp_path."""
from pathlib import Path

import pytest

from tinydata import write_config, write_tiny_set


@pytest.fixture
def tiny_set(tmp_path) -> Path:
    return write_tiny_set(tmp_path / "tiny")


@pytest.fixture
def tiny_config(tmp_path, tiny_set) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_set, tmp_path / "cache")


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder: a regression writing sweeps/ or outputs relative to the
    working directory lands there, not in the repository."""
    monkeypatch.chdir(tmp_path)
