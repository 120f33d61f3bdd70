"""The command line ``python -m facefill.data prepare | info`` (``main``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from facefill.errors import FacefillError, Interrupted

from .archives import _source_names
from .cache import DEFAULT_PROCESSED_DIR, _raw_index, _read_index, _resolve_processed, _stale_note
from .prepare_stage import prepare
from .sources import DATASETS, ENV_DATA_DIR, _locate, _not_found_message, resolve_data_dir
from .splits import TEST_FRACTION, VAL_FRACTION, _partition_path


def info(data_dir=None, processed_dir=DEFAULT_PROCESSED_DIR) -> str:
    """What the data dir and processed dir hold, as printable text."""
    root = resolve_data_dir(data_dir)
    env = os.environ.get(ENV_DATA_DIR)
    lines = [f"data dir: {root} ({f'from {ENV_DATA_DIR}' if env else 'from argument / default'})"]
    for name in DATASETS:
        try:
            source = _locate(name, data_dir)
            if source is None:
                lines.append(f"  {name:10s} MISSING: {_not_found_message(name, data_dir)}")
                continue
            n = len(_source_names(source))
            part = _partition_path(name, data_dir)
        except FacefillError as e:
            lines.append(f"  {name:10s} ERROR: {e}")
            continue
        lines.append(f"  {name:10s} {source} ({n} images" + (f", partition {part.name}" if part else "") + ")")
    processed = _resolve_processed(processed_dir)
    raw = _raw_index(processed)
    index = _read_index(processed, raw)
    lines.append(f"processed dir: {processed}")
    for entry in index["datasets"].values():
        for v in entry["variants"].values():
            lines.append(f"  {v['file']}: {v['shape']} seed={entry['seed']} test_fraction={entry['test_fraction']}"
                         f" val_fraction={entry['val_fraction']} split_by={entry['split_by']}"
                         f" train/val/test={len(entry['train'])}/{len(entry['val'])}/{len(entry['test'])}"
                         f" corrupt={entry['corrupt']['count']} unexpected={entry['unexpected']['count']}"
                         f" upscaled={v['upscaled']['count']}")
    note = _stale_note(processed, raw)
    if note:
        lines.append(f"  STALE: {note}")
    elif not index["datasets"]:
        lines.append("  (empty: run `python -m facefill.data prepare --variants ...`)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.data",
                                     description=sys.modules[__package__].__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="decode archives into processed .npy caches (DVC prepare_data stage)")
    p.add_argument("--variants", nargs="+", required=True, help="dataset/crop/size, e.g. lfw/default/250")
    p.add_argument("--data-dir", default=None,
                   help=f"folder holding the archives (default: ${ENV_DATA_DIR}, else data/raw); given, it wins over {ENV_DATA_DIR}")
    p.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION,
                   help="share of the training part held out as val (0: no val split)")
    p.add_argument("--by-identity", nargs="*", default=None, metavar="DATASET",
                   help="identity-disjoint splits: for the named datasets, or (no names) every dataset with "
                        "identities (lfw)")
    p.add_argument("--limit", type=int, default=None,
                   help="at most N images per dataset (smoke runs), taken from the splits in the same shares: "
                        "72/8/20 %% train/val/test with the default --test-fraction and --val-fraction")
    p.add_argument("--strict", action="store_true", help="fail on corrupt/unexpected images instead of skipping")
    i = sub.add_parser("info", help="show what the data dir and processed dir hold")
    i.add_argument("--data-dir", default=None, help=f"folder holding the archives (wins over {ENV_DATA_DIR})")
    i.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _explicit_data_dir(args.data_dir) as data_dir:
            _run_command(args, data_dir)
    except Interrupted as e:
        print(f"facefill: {e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print(f"facefill: {args.command} stopped by Ctrl-C; nothing was changed; rerun the same command.", file=sys.stderr)
        sys.exit(130)
    except FacefillError as e:
        sys.exit(f"error: {e}")


@contextlib.contextmanager
def _explicit_data_dir(data_dir):
    """An explicit ``--data-dir`` beats ``FACEFILL_DATA_DIR`` (the environment may be set by a profile the
    user forgot): the variable is ignored while the command runs, with a note when they differ. The path
    is the shell's, relative to the current folder."""
    if data_dir is None:
        yield None
        return
    explicit = Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_DATA_DIR)
    if env and Path(env).expanduser().resolve() != explicit:
        print(f"facefill: note: using --data-dir {explicit}, not {ENV_DATA_DIR}={env}", file=sys.stderr, flush=True)
    saved = os.environ.pop(ENV_DATA_DIR, None)
    try:
        yield explicit
    finally:
        if saved is not None:
            os.environ[ENV_DATA_DIR] = saved


def _run_command(args, data_dir) -> None:
    """The ``prepare`` / ``info`` command of :func:`main`, with the data dir already chosen."""
    if args.command == "prepare":
        by_identity = False if args.by_identity is None else (args.by_identity or True)
        index = prepare(args.variants, data_dir, args.processed_dir, args.seed, args.test_fraction,
                        args.limit, args.strict, val_fraction=args.val_fraction, by_identity=by_identity)
        for dataset, entry in index["datasets"].items():
            ups = ", ".join(f"{k}: {v['upscaled']['count']}" for k, v in entry["variants"].items()
                            if v.get("upscaled", {}).get("count"))
            print(f"{dataset}: {len(entry['cached'])} images cached (train/val/test "
                  f"{len(entry['train'])}/{len(entry['val'])}/{len(entry['test'])}, split by "
                  f"{entry['split_by']}), corrupt={entry['corrupt']['count']} "
                  f"unexpected={entry['unexpected']['count']} converted={entry['converted']['count']}"
                  + (f", upscaled ({ups})" if ups else ""))
    else:
        print(info(data_dir, args.processed_dir))
