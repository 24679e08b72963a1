"""How long `python build.py` takes for every target region, against one bare `cfn-lint`
run on one template. Target: ratio <= 2. Prints the numbers; run from the repository root.

    python benchmarks/build_vs_cfn_lint.py [--repeat 3]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_of(command, repeat):
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (best is kept)")
    args = parser.parse_args()
    dist = Path(tempfile.mkdtemp())
    try:
        build_best, build_median = best_of(
            [sys.executable, "build.py", "--dist", str(dist)], args.repeat
        )
        templates = sorted(dist.glob("*.json"))
        one = templates[0]
        cfn_lint = Path(sys.executable).with_name("cfn-lint")
        lint_best, lint_median = best_of(
            [str(cfn_lint), "--regions", one.stem, "--", str(one)], args.repeat
        )
    finally:
        shutil.rmtree(dist)
    print(
        f"python build.py ({len(templates)} regions, render + lint): best {build_best:.2f}s, median {build_median:.2f}s"
    )
    print(
        f"cfn-lint on one template ({one.name}): best {lint_best:.2f}s, median {lint_median:.2f}s"
    )
    print(f"ratio (best): {build_best / lint_best:.2f}  (target <= 2.00)")


if __name__ == "__main__":
    main()
