"""Baseline for `cargo bench -p failscope-shared --bench metrics`: the same confid metrics on 1M
samples computed the FD-Shifts way (numpy + scikit-learn, Python loops for the RC curves), using the
reference implementation that produced the test fixtures. Same data distribution as the criterion
bench (85 % accuracy, confidences rounded to 4 decimals, 7 classes).

    python shared/benches/fdshifts_reference.py      # needs numpy, scipy, scikit-learn, pyyaml
"""
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"))
from make_fixtures import confid_metrics  # noqa: E402

N = 1_000_000
rng = np.random.default_rng(1)
correct = rng.random(N) < 0.85
base = rng.random(N)
conf = np.round(np.where(correct, 0.5 + 0.5 * np.sqrt(base), 0.5 + 0.5 * base), 4)
labels = rng.integers(0, 7, N)

for legacy, name in [(False, "current"), (True, "fd-shifts-0.1.1")]:
    t = time.perf_counter()
    confid_metrics(conf, correct, labels, legacy)
    print(f"all confid metrics ({name}), 1M samples: {time.perf_counter() - t:.2f} s")
