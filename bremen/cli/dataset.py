"""``bremen dataset validate | info | convert``."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from bremen.data.dataset import Dataset, load_dataset, save_dataset
from bremen.data.export import export_d3rlpy
from bremen.data.importers import FORMATS, import_any
from bremen.errors import UserError
from bremen.io.paths import writable_file


def summary(ds: Dataset) -> str:
    """``N transitions, E episodes, ...``: the one-line description ``validate`` prints."""
    task = ds.metadata.get("task")
    return (
        f"{len(ds)} transitions, {len(ds.episode_ends())} episodes ({int(ds.terminals.sum())} terminals, "
        f"{int(ds.timeouts.sum())} timeouts), obs_dim {ds.obs_dim}, act_dim {ds.act_dim}"
        + (f", task {task}" if task else "")
    )


def read(args):
    """The file as bremen reads it anywhere (a D4RL-layout file converted on the fly, with a note)."""
    from bremen.data.importers import inferred_note, read_dataset

    ds = read_dataset(args.file, args.task)
    note = inferred_note(ds)
    if note:
        print(f"note: {args.file}: {note}", file=sys.stderr)
    return ds


def cmd_validate(args) -> int:
    ds = read(args)
    print(f"OK: {args.file}: {summary(ds)}")
    return 0


def cmd_info(args) -> int:
    ds = read(args)
    returns = ds.episode_returns()
    lengths = np.diff(np.concatenate([[0], ds.episode_ends() + 1]))
    lines = [
        f"file:          {args.file}",
        f"transitions:   {len(ds)}",
        f"obs_dim:       {ds.obs_dim}",
        f"act_dim:       {ds.act_dim}",
        f"episodes:      {len(returns)} (length mean {lengths.mean():.1f}, min {lengths.min()}, max {lengths.max()})",
        f"terminals:     {int(ds.terminals.sum())}",
        f"timeouts:      {int(ds.timeouts.sum())}",
        f"return:        mean {returns.mean():.2f}, min {returns.min():.2f}, max {returns.max():.2f} (per episode)",
        f"reward:        mean {ds.rewards.mean():.4f}, min {ds.rewards.min():.4f}, max {ds.rewards.max():.4f} "
        f"(per step)",
        "metadata:",
    ]
    for key in sorted(ds.metadata):
        value = ds.metadata[key]
        lines.append(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")
    print("\n".join(lines))
    return 0


def cmd_convert(args) -> int:
    if os.path.exists(args.dst) and not args.force:
        raise UserError(f"{args.dst}: already exists; pass --force to overwrite it or choose another name")
    if os.path.abspath(args.dst) == os.path.abspath(args.src):
        raise UserError(f"{args.dst}: is the source file; write the converted dataset to another path")
    writable_file(args.dst, "DST")
    ds = import_any(args.src, args.format, args.task, args.horizon)
    if args.to == "d3rlpy":
        export_d3rlpy(ds, args.dst)
    else:
        save_dataset(ds, args.dst)
    print(f"wrote {args.dst} ({args.to}): {summary(ds)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("dataset", help="validate, describe and convert offline datasets",
                       description="Offline datasets in bremen's HDF5 format (docs/datasets-format.md).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    v = dsub.add_parser("validate", help="check a bremen dataset file; exit status 2 if it is not valid")
    v.add_argument("file", help="a bremen .h5 dataset")
    v.add_argument("--task", help="also check the dims against this task")
    v.set_defaults(func=cmd_validate)

    i = dsub.add_parser("info", help="summarize a bremen dataset file")
    i.add_argument("file", help="a bremen .h5 dataset")
    i.add_argument("--task", help="also check the dims against this task")
    i.set_defaults(func=cmd_info)

    c = dsub.add_parser("convert", help="import a D4RL, Minari or BRAC dataset (or re-export a bremen one)")
    c.add_argument("src", help="D4RL .hdf5, Minari dataset folder or id, BRAC checkpoint prefix or folder, "
                               "or a bremen .h5")
    c.add_argument("dst", help="output file (.h5 for --to bremen, .npz for --to d3rlpy)")
    c.add_argument("--format", default="auto", choices=("auto",) + FORMATS,
                   help="source format (default: detect it)")
    c.add_argument("--task", help="task the data belongs to: checks the dims and records it in the metadata")
    c.add_argument("--to", default="bremen", choices=("bremen", "d3rlpy"),
                   help="bremen HDF5 (default) or a .npz for d3rlpy.dataset.MDPDataset")
    c.add_argument("--horizon", type=int, default=1000,
                   help="time limit used to infer timeouts of D4RL files that have none (default 1000)")
    c.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    c.set_defaults(func=cmd_convert)
