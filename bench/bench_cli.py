"""How long `syncer --help` takes to start: the first thing a new user runs.

    .venv/bin/python -m bench.bench_cli [--runs N] [--repo PATH]

Runs `python -m syncer.cli --help` and `python -m syncer.cli model --help` N times each
in a fresh process (as hyperfine does) and prints the best and the median wall-clock time,
beside `python -c pass` (the interpreter alone: no command line can start faster). With
--repo, the syncer of another checkout is timed (e.g. a `git worktree` of an older commit,
for before/after figures): its folder goes first on the child's sys.path.

The best run is the machine's floor; the median is what a user sees on a machine as busy
as this one was (compare the two: a wide gap means other load). Then
`python -X importtime -c "import syncer.cli"` lists the slowest imports, which is where to
look when the figure grows (the command modules must import SQLAlchemy, the CRM clients,
scikit-learn and the sandboxes inside their commands, not at the top).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "syncer --help": ["-m", "syncer.cli", "--help"],
    "syncer model --help": ["-m", "syncer.cli", "model", "--help"],
}


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds one child process took, start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def slowest_imports(cwd: Path, env: dict[str, str], count: int = 8) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports of `import syncer.cli`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import syncer.cli"],
                          cwd=cwd, env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose syncer is timed (default: this one)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    env = {**os.environ, "PYTHONPATH": str(repo)}
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each; {repo}")
    print(f"{'command':<22} {'best':>8} {'median':>8}")
    for label, command in COMMANDS.items():
        timed(command, repo, env)  # warm the file cache and the .pyc files
        times = [timed(command, repo, env) for _ in range(args.runs)]
        best, median = min(times) * 1000, statistics.median(times) * 1000
        print(f"{label:<22} {best:>6.0f} ms {median:>5.0f} ms")
    print("slowest imports of `import syncer.cli` (cumulative):")
    for micros, module in slowest_imports(repo, env):
        print(f"  {micros / 1000:>7.1f} ms {module}")


if __name__ == "__main__":
    main()
