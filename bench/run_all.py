"""Run every bench/*.py with the same thread count and write their markdown sections to bench/results.md.

Each script runs in its own process (``--threads N --markdown``), one after
another so they do not compete for cores. A script that fails gets a section
quoting the end of its error output, and this script then exits with status
1; the results file is written atomically either way. ``make bench`` runs
this with ``--threads 2``.

    .venv/bin/python bench/run_all.py [--threads 2] [--out bench/results.md] [-- extra flags for every script]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

from silentspeech.atomic import atomic_write_text
from silentspeech.benchmark import environment_line, set_threads

BENCH = Path(__file__).resolve().parent


def git_commit() -> str:
    """The checkout's commit (with ``+changes`` when the tree differs from it), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=BENCH, capture_output=True, text=True).stdout
        return commit + (" +changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for every script (default 2)")
    parser.add_argument("--out", type=Path, default=BENCH / "results.md", help="results file (default bench/results.md)")
    parser.add_argument("--only", nargs="+", default=None, help="script names to run (default: every bench/*.py)")
    parser.add_argument("extra", nargs="*", help="flags passed on to every script (after --)")
    args = parser.parse_args()

    scripts = sorted(path for path in BENCH.glob("*.py") if path.name != Path(__file__).name)
    if args.only:
        scripts = [path for path in scripts if path.stem in args.only or path.name in args.only]
    set_threads(args.threads)  # for the machine line of the header
    started = datetime.datetime.now(datetime.timezone.utc)
    sections, failed = [], []
    for script in scripts:
        command = [sys.executable, str(script), "--threads", str(args.threads), "--markdown", *args.extra]
        print(f"running {script.name} ...", flush=True)
        start = time.perf_counter()
        # OMP_NUM_THREADS before torch starts: the OpenMP pool then matches torch.set_num_threads.
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        seconds = time.perf_counter() - start
        if result.returncode == 0:
            sections.append(result.stdout.strip() + f"\n\n_{script.name}: {seconds:.0f} s._\n")
            print(result.stdout.strip() + "\n", flush=True)
        else:
            failed.append(script.name)
            error = "\n".join(result.stderr.strip().splitlines()[-15:])
            sections.append(f"## {script.name} FAILED (exit status {result.returncode})\n\n```\n{error}\n```\n")
            print(f"{script.name} failed:\n{error}\n", file=sys.stderr, flush=True)
    header = (
        "# Benchmarks\n\n"
        f"Written by `bench/run_all.py --threads {args.threads}` (`make bench`) on {started:%Y-%m-%d %H:%M} UTC, "
        f"commit {git_commit()}.  \nMachine at the start: {environment_line(args.threads)}.\n\n"
        "Each script times the plain path and the fast path in the same run, calls interleaved; "
        "see each script's docstring for what is measured.\n"
    )
    atomic_write_text(args.out, header + "\n" + "\n".join(sections))
    print(f"wrote {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
