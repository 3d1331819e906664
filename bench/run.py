"""``python -m bench [--quick] [--only NAME,...] [--json FILE]``: run the benchmarks, print one table.

Every figure is a ratio against a reference measured in the same run (these machines are shared and
noisy, so absolute seconds from another run mean little).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.common import Row

BENCHES = ("run_notebooks", "logs_fetch", "rate_budget", "analysis", "throughput", "overhead", "logpush_export")


def _ratio(row: Row) -> str:
    return "" if row.ratio is None else f"{row.ratio:.2f}"


def _met(row: Row) -> str:
    return "n/a" if row.met is None else ("yes" if row.met else "NO")


def table(rows: Sequence[Row]) -> str:
    header = ("bench", "figure", "reference (same run)", "ratio", "target", "met")
    lines = [(r.name, r.figure, r.reference, _ratio(r), r.target, _met(r)) for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=False)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    for r in rows:
        out += [f"- {r.name}: {r.what}"] + [f"  - {note}" for note in r.notes]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: well under a minute in all")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows (with raw samples) here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {unknown}; known: {', '.join(BENCHES)}")
    rows: list[Row] = []
    failed = False
    for name in names:
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            row: Row = importlib.import_module(f"bench.{name}").run(args.quick)
        except Exception as exc:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            failed = True
            row = Row(name, "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}", "", None, "",
                      False)
        print(f"bench: {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        rows.append(row)
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2, default=str) + "\n")
    return 1 if failed else 0
