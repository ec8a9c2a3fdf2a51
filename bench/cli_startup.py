"""Start-up time of CLI commands that need no torch, before and after the lazy imports, against ``python -c pass``.

Each command runs as a fresh process (``python -m nasforge.cli ...`` with ``PYTHONPATH`` set to a tree's ``src``)
``--repeats`` times; the figure is the minimum over the repeats (the least disturbed run on a shared machine), as
wall seconds and as CPU seconds of the child (user + sys, from ``resource.getrusage``), and the ratio of each to
``python -c pass`` measured in the same loop. "before" is a git worktree of ``--before`` (default: the commit
before the lazy imports) made in a temporary folder; "after" is this checkout.

    .venv/bin/python bench/cli_startup.py [--before REV] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NB201 = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
COMMANDS: list[list[str]] = [
    ["--help"],
    ["space", "list"],
    ["space", "describe", "nb201", "--samples", "20"],
    ["space", "sample", "mobilenet", "-n", "3"],
    ["profile", "mobilenet_v2", "--no-layers"],
    ["profile", NB201],
]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, child CPU s) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(argv: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    runs = [timed(argv, env) for _ in range(repeats)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="5dc101d", help="git revision measured as 'before'")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.before],
                       check=True)
        try:
            trees = {"before": old / "src", "after": ROOT / "src"}
            base = best([sys.executable, "-c", "pass"], dict(os.environ), args.repeats)
            print(f"python -c pass: {base[0]:.3f} s wall, {base[1]:.3f} s CPU (min of {args.repeats}); "
                  f"load average {os.getloadavg()[0]:.1f}")
            print("| command | before: wall s (x pass) | after: wall s (x pass) | before: CPU s (x pass) | "
                  "after: CPU s (x pass) |")
            print("|---|---|---|---|---|")
            for cmd in COMMANDS:
                cells = []
                for src in trees.values():
                    env = {**os.environ, "PYTHONPATH": str(src)}
                    cells.append(best([sys.executable, "-m", "nasforge.cli", *cmd], env, args.repeats))
                (bw, bc), (aw, ac) = cells
                label = " ".join(c if len(c) < 30 else c[:26] + "...|" for c in cmd)
                print(f"| `nasforge {label}` | {bw:.3f} ({bw / base[0]:.1f}x) | {aw:.3f} ({aw / base[0]:.1f}x) | "
                      f"{bc:.3f} ({bc / base[1]:.0f}x) | {ac:.3f} ({ac / base[1]:.0f}x) |")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
