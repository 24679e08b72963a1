"""How long `python build.py` takes against ONE bare cfn-lint run of the product template.

The build renders the one product template (the same bytes for every region) and the launch
role into a temporary dist/ and lints both for the settings' publish regions, in forked
workers. The baseline is one fresh `cfn-lint --regions <first publish region> --
components-runtime.json` process on the template that build wrote. Target: build wall time
<= 1.5x the baseline's (best of the runs).

The two commands alternate, so both see the same machine load; wall time still depends on
what else the machine runs, so CPU time (user + system of the process and its workers) and
the load average are printed too: on a busy machine the CPU ratio is the steadier one.

    python benchmarks/build_vs_cfn_lint.py [--repeat 5]    # from the repository root
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "params" / "build.json"
PRODUCT_FILE = "components-runtime.json"  # build.PRODUCT_FILE, not imported: no build imports here
TARGET_RATIO = 1.5


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command):
    """(wall, CPU) seconds of one run of ``command``: CPU counts its forked workers too."""
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started, children_cpu_seconds() - cpu_before


def summary(runs):
    """{"best", "median", "cpu_best", "cpu_median"} of a list of (wall, CPU) runs."""
    walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
    return {
        "best": min(walls),
        "median": statistics.median(walls),
        "cpu_best": min(cpus),
        "cpu_median": statistics.median(cpus),
    }


def ratios(build_runs, baseline_runs):
    """Build over baseline: wall best over best, median over median, the median of each
    round's own ratio (a round's two runs are seconds apart, so they saw about the same load),
    and CPU best over best."""
    build, baseline = summary(build_runs), summary(baseline_runs)
    paired = [b[0] / a[0] for b, a in zip(build_runs, baseline_runs, strict=True)]
    return {
        "wall_best": build["best"] / baseline["best"],
        "wall_median": build["median"] / baseline["median"],
        "wall_paired_median": statistics.median(paired),
        "cpu": build["cpu_best"] / baseline["cpu_best"],
    }


def report(build_label, build_runs, baseline_label, baseline_runs, loads):
    lines = [
        f"{label}: wall best {s['best']:.2f}s, median {s['median']:.2f}s; "
        f"CPU best {s['cpu_best']:.2f}s, median {s['cpu_median']:.2f}s"
        for label, s in (
            (build_label, summary(build_runs)),
            (baseline_label, summary(baseline_runs)),
        )
    ]
    r = ratios(build_runs, baseline_runs)
    verdict = "met" if r["wall_best"] <= TARGET_RATIO else "NOT met"
    lines.append(
        f"ratio build / baseline: wall best {r['wall_best']:.2f} (target <= {TARGET_RATIO}: "
        f"{verdict}), wall median {r['wall_median']:.2f}, median of the rounds' ratios "
        f"{r['wall_paired_median']:.2f}, CPU {r['cpu']:.2f}"
    )
    lines.append(
        "load average (1 min) before/after: "
        + " / ".join(f"{load:.2f}" for load in loads)
        + f" on {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    region = sorted(json.loads(SETTINGS.read_text())["regions"])[0]
    publish_regions = len(json.loads(SETTINGS.read_text())["regions"])
    dist = Path(tempfile.mkdtemp())
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    build_command = [sys.executable, "build.py", "--dist", str(dist)]
    baseline_command = [str(cfn_lint), "--regions", region, "--", str(dist / PRODUCT_FILE)]
    loads = [os.getloadavg()[0]]
    build_runs, baseline_runs = [], []
    try:
        for _ in range(args.repeat):  # alternated: both commands see the same load
            build_runs.append(run_once(build_command))
            baseline_runs.append(run_once(baseline_command))
        templates = len(list(dist.glob("*.json")))
    finally:
        shutil.rmtree(dist)
    loads.append(os.getloadavg()[0])
    build_label = (
        f"python build.py ({templates} templates, render + lint for {publish_regions} regions)"
    )
    baseline_label = f"baseline: cfn-lint --regions {region} -- {PRODUCT_FILE}"
    print(report(build_label, build_runs, baseline_label, baseline_runs, loads))


if __name__ == "__main__":
    main()
