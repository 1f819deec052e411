"""The `dfsweep` command: subcommands only — parse, call one function, return an exit code."""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from .errors import DfsweepError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + error by default)
        self.exit(2, f"dfsweep: error: {message}\n")


def cmd_train(args) -> int:
    """Train one configuration alone (no sweep) and save model.pth, history.csv and config.yaml."""
    from .config import load_config
    from .single import train_to_dir
    cfg = load_config(args.config, args.set)
    out = Path(args.out) if args.out else Path("sweeps") / "train" / Path(args.config).stem
    train_to_dir(cfg, out)
    return 0


def cmd_demo_data(args) -> int:
    """Write the embedded, deterministic demo set (face-like real/fake images at 5:1) to DIR."""
    from .data import generate_demo
    out = Path(args.dir)
    if out.exists() and any(out.iterdir()):
        raise DfsweepError(f"{out}: folder exists and is not empty")
    path = generate_demo(out, seed=args.seed)
    print(f"wrote demo data to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dfsweep", description="Sweeps for from-scratch deepfake face detectors.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name, fn):
        sp = sub.add_parser(name, help=fn.__doc__.splitlines()[0], description=fn.__doc__)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("train", cmd_train)
    sp.add_argument("config", help="YAML config (e.g. search_spaces/deepfakenet.yaml)")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.epochs=3")
    sp.add_argument("--out", help="output folder (default sweeps/train/<config name>)")

    sp = add("demo-data", cmd_demo_data)
    sp.add_argument("dir", help="output folder")
    sp.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return int(args.fn(args) or 0)
    except DfsweepError as e:
        if args.debug:
            traceback.print_exc()
        print(f"dfsweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dfsweep: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or a failed run: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"dfsweep: error: {type(e).__name__}: {msg} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
