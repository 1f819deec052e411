"""The `dfsweep` command: subcommands only — parse, call one function, return an exit code."""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from .errors import DfsweepError

__all__ = ["main", "entry"]


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


def cmd_run(args) -> int:
    """Run a sweep: Ray Tune trials guided by Optuna (TPE), ASHA early stopping, every trial in MLflow."""
    from .sweep import SweepPaths, prepare_sweep, run_sweep
    resume = args.resume
    if args.resume_or_start:
        if not args.name:
            raise DfsweepError("--resume-or-start needs --name (the sweep to continue, or to start under that name)")
        resume = SweepPaths(Path("sweeps"), args.name).spec.is_file()
    cfg, space, paths = prepare_sweep(args.space, args.set, args.data, args.name, resume)
    out = run_sweep(cfg, space, paths, resume=resume, address=args.address, tracking_uri=args.tracking_uri,
                    storage=args.storage)
    from .report import board_table
    board = out.leaderboard
    n_confirm = int((board["role"] == "confirm").sum()) if len(board) else 0
    from .objective import Scoring
    metric = Scoring.of(cfg.sweep, cfg.finalize).key
    print(f"\nleaderboard ({metric} at each trial's best epoch, 95% bootstrap intervals"
          f"{'; confirmed configurations first, by their mean over new seeds' if n_confirm else ''}):")
    print(board_table(board, metric) if len(board) else "(no trials)")
    print(f"\nsweep {paths.name}: {len(board) - n_confirm} trials and {n_confirm} confirmation runs in "
          f"{out.wall_s:.0f}s; leaderboard {paths.leaderboard}; best config {paths.best if out.best_config else '(none)'}")
    for line in out.verdict:
        print(line)
    if out.interrupted:
        print(f"dfsweep: interrupted; resume with: dfsweep run {args.space} --resume --name {paths.name}",
              file=sys.stderr)
        return 130
    return 0


def cmd_finalize(args) -> int:
    """Retrain the sweep's best config (stage 1, 88/12), pick the threshold, fine-tune on all data (stage 2),
    write best_model.pth, best_model_finetuned.pth and submission.csv.

    Each output appears whole or not at all. Until finalize completes, <out>/.resume/ keeps the state of the
    last finished epoch: after a kill or Ctrl-C, the same command with --resume continues from there and
    writes what an uninterrupted run would (a changed config, seed or training data is refused; the threshold
    rule and submission options may change). Without --resume, finalize refuses to touch an unfinished run;
    --restart discards its state and starts over. A new run replaces the folder's earlier outputs."""
    from .finalize import finalize
    try:
        finalize(args.sweep, data=args.data, test=args.test, out=args.out, sets=args.set, resume=args.resume,
                 restart=args.restart, trial=args.trial)
    except KeyboardInterrupt:
        print("dfsweep: interrupted; continue with the same command and --resume", file=sys.stderr)
        return 130
    return 0


def cmd_evaluate(args) -> int:
    """Score a labelled set (real/+fake/ folders or images + labels.csv) with a checkpoint at its threshold."""
    import json
    from .predict import evaluate_checkpoint
    m = evaluate_checkpoint(args.model, args.data, tta_flip=args.tta)
    if args.json:
        print(json.dumps(m))
    else:
        c = m["confusion"]
        print(f"{m['data']}: {m['n']} images ({m['n_real']} real, {m['n_fake']} fake)")
        print(f"auc {m['auc']:.4f} [95% {m['auc_lo']:.4f}, {m['auc_hi']:.4f}]  ap {m['ap']:.4f} "
              f"[{m['ap_lo']:.4f}, {m['ap_hi']:.4f}]")
        print(f"at threshold {m['threshold']:.4f}: f1 {m['f1']:.4f}  "
              f"fake-recall {m['recall']:.4f}  precision {m['precision']:.4f}")
        print(f"confusion: tn {c['tn']}  fp {c['fp']}  fn {c['fn']}  tp {c['tp']}")
    return 0


def cmd_predict(args) -> int:
    """Score image files or folders with a checkpoint or models:/NAME@champion: id, fake probability, label."""
    from .predict import predict_chunks, predict_to_csv
    if args.out:
        n = predict_to_csv(args.model, args.paths, args.out, tta_flip=args.tta, resume=args.resume,
                           restart=args.restart)
        print(f"wrote {n} predictions to {args.out}")
        return 0
    for i, chunk in enumerate(predict_chunks(args.model, args.paths, tta_flip=args.tta)):
        print(chunk.to_csv(index=False, header=i == 0), end="", flush=True)
    return 0


def cmd_status(args) -> int:
    """Show a sweep from its files, while it runs or after: its state and phase, running trials with their
    epoch and ETA, and its leaderboard (default: the latest sweep). No Ray needed."""
    from .status import show_status
    print(show_status(args.sweep, plots=args.plots))
    return 0


def cmd_ls(args) -> int:
    """List the sweeps under sweeps/: state, phase, trials, best score and age, newest first."""
    from .status import list_text
    print(list_text())
    return 0


def cmd_ui(args) -> int:
    """Start the MLflow UI over the sweeps' tracking store (127.0.0.1 unless --host), print its address.

    Also printed: the newest sweep's runs, where its parent run charts every trial's validation AUC by epoch
    (--open opens them in a browser)."""
    from .ui import serve_ui
    return serve_ui(port=args.port, host=args.host, tracking_uri=args.tracking_uri, open_browser=args.open)


def cmd_demo_data(args) -> int:
    """Write the embedded, deterministic demo set (face-like real/fake images at 5:1) to DIR."""
    from .data import generate_demo
    out = Path(args.dir)
    if out.exists() and any(out.iterdir()):
        raise DfsweepError(f"{out}: folder exists and is not empty")
    path = generate_demo(out, seed=args.seed)
    print(f"wrote demo data to {path}")
    return 0


def cmd_split(args) -> int:
    """Split a labelled set into DIR/select/ and DIR/test/ (a labels.csv each): choose on one, report on the other.

    Stratified by label and group-aware: a group (the labels.csv `group` column, e.g. the identity or source
    video) or else a file is on one side only. --fraction is the test half's share. Each labels.csv lists the
    source images by absolute path, so nothing is copied; an existing DIR/select or DIR/test is refused."""
    from .split_set import HALVES, split_set
    r = split_set(args.src, args.out, fraction=args.fraction, seed=args.seed)
    for half in HALVES:
        h = r[half]
        print(f"{half}: {h['n']} images ({h['n_real']} real, {h['n_fake']} fake) -> {h['path']}")
    print(f"grouped by column {r['grouped_by']!r} ({r['n_groups']} groups, each on one side)" if r["grouped_by"]
          else "grouped by file (no group column)")
    return 0


def _run_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("space", help="sweep YAML with `search:` and `sweep:` sections")
    sp.add_argument("--data", help="training data folder (overrides data.train)")
    sp.add_argument("--name", help="sweep name (default: sweep.name, else <yaml stem>-<time>)")
    again = sp.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue a stopped or killed sweep (default: latest)")
    again.add_argument("--resume-or-start", action="store_true", help="continue the sweep --name names if it "
                       "exists, else start it (a job that may be retried)")
    sp.add_argument("--address", default=None, help="Ray cluster HOST:PORT to run on, from one of its nodes (default: "
                    "RAY_ADDRESS; --resume: the sweep's cluster; else a local Ray, as `local` forces); "
                    "token auth needs RAY_AUTH_MODE=token")
    sp.add_argument("--storage", default=None, metavar="PATH_OR_URI",
                    help="where Tune keeps the experiment, as <storage>/<name>: on a cluster a shared path or a URI "
                    "(s3://...) every node reaches (default sweeps/<name>/tune; --resume: where the sweep recorded it)")
    sp.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or "
                    "sqlite under sweeps/)")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. sweep.num_samples=4")


def _finalize_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("sweep", nargs="?", default=None, help="sweep folder or name (default sweeps/latest)")
    sp.add_argument("--data", help="training data (default: the sweep's)")
    sp.add_argument("--test", help="test image folder for submission.csv (default: data.test)")
    sp.add_argument("--out", help="output folder (default <sweep>/final)")
    sp.add_argument("--trial", metavar="ID", help="train this search trial's configuration (e.g. a member of a "
                    "multi-objective sweep's Pareto front) instead of best.yaml's")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. finalize.epochs=10")
    again = sp.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue a killed or interrupted finalize in the "
                       "output folder from its last finished epoch (same config and data)")
    again.add_argument("--restart", action="store_true", help="discard an unfinished finalize's state and start over")


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

    _run_arguments(add("run", cmd_run))

    _finalize_arguments(add("finalize", cmd_finalize))

    sp = add("evaluate", cmd_evaluate)
    sp.add_argument("model", help="a dfsweep checkpoint (.pth) or an MLflow model URI (models:/NAME@champion)")
    sp.add_argument("data", help="labelled folder: real/ + fake/, or images + labels.csv")
    sp.add_argument("--json", action="store_true", help="one JSON object on one line")
    sp.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")

    sp = add("predict", cmd_predict)
    sp.add_argument("model", help="a dfsweep checkpoint (.pth) or an MLflow model URI (models:/NAME@champion)")
    sp.add_argument("paths", nargs="+", help="image files or folders")
    sp.add_argument("--out", help="CSV to write as the images are scored, complete only at the end (default: print)")
    sp.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    sp.add_argument("--resume", action="store_true", help="continue an interrupted --out run where it stopped")
    sp.add_argument("--restart", action="store_true", help="drop an interrupted --out run and start over")

    sp = add("status", cmd_status)
    sp.add_argument("sweep", nargs="?", default=None, help="sweep folder or name (default sweeps/latest)")
    sp.add_argument("--plots", action="store_true", help="also write the search's analysis (parameter importances, "
                    "parallel coordinates, history) as PNGs to <sweep>/analysis/")

    add("ls", cmd_ls)

    sp = add("ui", cmd_ui)
    sp.add_argument("--port", type=int, default=5000)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--tracking-uri", default=None)
    sp.add_argument("--open", action="store_true", help="open the newest sweep's runs in a browser once the UI answers")

    sp = add("split", cmd_split)
    sp.add_argument("src", metavar="SRC", help="labelled folder: real/ + fake/, or images + labels.csv")
    sp.add_argument("--out", required=True, metavar="DIR", help="writes DIR/select/labels.csv and DIR/test/labels.csv")
    sp.add_argument("--fraction", type=float, default=0.5, help="the test half's share, in (0, 1) (default 0.5)")
    sp.add_argument("--seed", type=int, default=0)

    sp = add("demo-data", cmd_demo_data)
    sp.add_argument("dir", help="output folder")
    sp.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
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


def entry() -> None:
    """The console script and `python -m dfsweep`: the command in a child process watched by this one (which
    says so when the kernel kills it for memory: `supervise.py`); there, `main()`, then leave without the
    interpreter's teardown.

    When a command returns, what it wrote is written and closed (files, the MLflow store, Ray shut down);
    tearing down the modules of torch, Ray and MLflow afterwards only costs seconds. So the streams are
    flushed, the atexit hooks (logging, MLflow, Ray) run, and the process exits with the code."""
    from .supervise import SUPERVISED, supervise
    if not os.environ.pop(SUPERVISED, None) and sys.platform.startswith("linux"):
        os._exit(supervise(sys.argv[1:]))
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):       # a closed pipe or stream: nothing left to flush there
            pass
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
