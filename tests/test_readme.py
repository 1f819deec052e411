"""The README's commands are real: every `dfsweep ...` line of its bash blocks parses with the CLI's parser,
every `--set` key is a config key, and the install and test commands are the ones CI runs."""
import re
import shlex
from pathlib import Path

import pytest

from dfsweep.cli import build_parser
from dfsweep.config import Config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands():
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("dfsweep "):
                lines.append(line)
    return lines


def _is_config_key(key: str) -> bool:
    node = Config().to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("line", _commands())
def test_readme_command_parses(line):
    args = build_parser().parse_args(shlex.split(line)[1:])
    for item in getattr(args, "set", None) or []:
        assert _is_config_key(item.split("=", 1)[0]), f"{line}: --set {item} is not a config key"


def test_readme_has_the_main_commands_and_ci_runs_its_install_and_test_commands():
    assert len(_commands()) >= 4
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in README and 'pip install -e ".[dev]"' in ci
    assert "python -m pytest -q" in README and "python -m pytest -q" in ci
