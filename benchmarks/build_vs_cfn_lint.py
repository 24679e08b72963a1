"""How long `python build.py` (render and lint every target region into a temporary dist/)
takes, against its baseline: ONE bare `cfn-lint --regions <region> -- <region>.json` run, in
a fresh process, on the first region's template. Target: ratio <= 1.5 (wall, best of the runs).

Wall time depends on what else the machine runs, so CPU time (user + system, of the process
and its workers) is printed too: on a busy machine that ratio is the steadier one.

    python benchmarks/build_vs_cfn_lint.py [--repeat 3]    # from the repository root
"""

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, repeat):
    """(best wall, median wall, best CPU) seconds of ``repeat`` runs of ``command``."""
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu_before = time.perf_counter(), children_cpu_seconds()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        walls.append(time.perf_counter() - started)
        cpus.append(children_cpu_seconds() - cpu_before)
    return min(walls), statistics.median(walls), min(cpus)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (best is kept)")
    args = parser.parse_args()
    dist = Path(tempfile.mkdtemp())
    try:
        build = timed([sys.executable, "build.py", "--dist", str(dist)], args.repeat)
        regional = sorted(p for p in dist.glob("*.json") if p.stem[-1].isdigit())
        one = regional[0]
        cfn_lint = Path(sys.executable).with_name("cfn-lint")
        baseline = timed([str(cfn_lint), "--regions", one.stem, "--", str(one)], args.repeat)
        templates = len(list(dist.glob("*.json")))
    finally:
        shutil.rmtree(dist)
    for name, (best, median, cpu) in (
        (f"python build.py ({templates} templates, render + lint)", build),
        (f"baseline: cfn-lint --regions {one.stem} -- {one.name}", baseline),
    ):
        print(f"{name}: wall best {best:.2f}s, median {median:.2f}s; CPU {cpu:.2f}s")
    print(
        f"ratio build / baseline: wall {build[0] / baseline[0]:.2f} (target <= {TARGET_RATIO}), "
        f"CPU {build[2] / baseline[2]:.2f}"
    )


if __name__ == "__main__":
    main()
