"""Baseline for `cargo bench -p failscope-shared --bench metrics`: the same confidence metrics on
100,000 samples (`FAILSCOPE_BENCH_N`; FD-Shifts' Python loops take minutes at a million) computed by
FD-Shifts' own code (`ConfidEvaluator.get_metrics_per_confid`, HEAD c4467ae and
v0.1.1), on the same data distribution as the criterion bench (85 % accuracy, confidences rounded to
4 decimals, 7 classes).

    FAILSCOPE_FDSHIFTS_HEAD=src-head FAILSCOPE_FDSHIFTS_V011=src-v011 \
        python shared/benches/fdshifts_reference.py

Each variable names a `git archive` of FD-Shifts' analysis package, set up outside the repository as
`tests/fixtures/fdshifts/make_expected.py` describes (its Python environment too). Each version runs
in its own process.
"""
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve()
QUERY = {
    "head": ["failauc", "failap_suc", "failap_err", "fail-NLL", "mce", "ece", "e-aurc", "b-aurc", "aurc",
             "augrc", "e-augrc", "augrc-ba", "aurc-ba", "fpr@95tpr", "risk@100cov", "risk@95cov",
             "risk@90cov", "risk@85cov", "risk@80cov", "risk@75cov"],
    "v011": ["failauc", "failap_suc", "failap_err", "fail-NLL", "mce", "ece", "e-aurc", "b-aurc", "aurc",
             "fpr@95tpr", "risk@100cov", "risk@95cov", "risk@90cov", "risk@85cov", "risk@80cov", "risk@75cov"],
}


def worker(version, src):
    sys.path.insert(0, str(HERE.parents[2] / "tests" / "fixtures" / "fdshifts"))
    sys.path.insert(0, str(pathlib.Path(src).resolve()))
    import numpy as np
    from make_expected import stub_imports

    cfgmod, _ = stub_imports()
    import fd_shifts
    fd_shifts.configs = cfgmod
    from fd_shifts.analysis.eval_utils import ConfidEvaluator

    n = int(os.environ.get("FAILSCOPE_BENCH_N", "100000"))
    rng = np.random.default_rng(1)
    correct = (rng.random(n) < 0.85).astype(int)
    base = rng.random(n)
    conf = np.round(np.where(correct == 1, 0.5 + 0.5 * np.sqrt(base), 0.5 + 0.5 * base), 4)
    labels = rng.integers(0, 7, n).astype(float)
    t = time.perf_counter()
    ConfidEvaluator(conf, correct, labels, list(QUERY[version]), [], 20).get_metrics_per_confid()
    print(f"FD-Shifts {version}: all confid metrics, {n} samples: {time.perf_counter() - t:.2f} s")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
        return
    ran = False
    for version, var in (("head", "FAILSCOPE_FDSHIFTS_HEAD"), ("v011", "FAILSCOPE_FDSHIFTS_V011")):
        src = os.environ.get(var)
        if src:
            subprocess.run([sys.executable, str(HERE), "--worker", version, src], check=True)
            ran = True
        else:
            print(f"{var} not set: FD-Shifts {version} not timed")
    if not ran:
        sys.exit("set FAILSCOPE_FDSHIFTS_HEAD and/or FAILSCOPE_FDSHIFTS_V011 (see the docstring)")


if __name__ == "__main__":
    main()
