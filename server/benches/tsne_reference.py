"""The Python side of failscope's embedding benchmark (`cargo xtask bench`).

Reads an (n, d) float32 .npy of features and times, on the same machine and threads:
  * the SF-Visuals pipeline: scikit-learn PCA(50) then scikit-learn TSNE (Barnes-Hut), in 2-D or
    3-D (SF-Visuals' own view);
  * openTSNE (FFT-interpolated gradients) after the same PCA(50), in 2-D (its FFT method has no
    3-D).
Prints one JSON object: seconds and the trustworthiness (k=10) of each embedding on a fixed
subsample — also of failscope's embedding when given. Usage:
  python tsne_reference.py FEATURES.npy THREADS [FAILSCOPE_EMBEDDING.npy] [--dims=2|3] [--skip-sklearn]
"""
import json
import sys
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    skip_sklearn = "--skip-sklearn" in sys.argv
    dims = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--dims=")), 2)
    x = np.load(path).astype(np.float32)
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(x), size=min(len(x), 5000), replace=False))
    out = {"n": int(x.shape[0]), "d": int(x.shape[1]), "threads": threads, "dims": dims}

    def trust(emb):
        return float(trustworthiness(x[sub], emb[sub], n_neighbors=10))

    extra = [a for a in sys.argv[3:] if not a.startswith("--")]
    if extra:
        out["failscope_trust"] = trust(np.load(extra[0]))
    if not skip_sklearn:
        t0 = time.perf_counter()
        z = PCA(n_components=50, random_state=0).fit_transform(x)
        emb = TSNE(n_components=dims, perplexity=30.0, init="pca", random_state=0, n_jobs=threads).fit_transform(z)
        out["sklearn_s"] = time.perf_counter() - t0
        out["sklearn_trust"] = trust(emb)
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        OpenTSNE = None
    if OpenTSNE is not None and dims == 2:
        t0 = time.perf_counter()
        z = PCA(n_components=50, random_state=0).fit_transform(x)
        emb = np.asarray(OpenTSNE(n_components=dims, perplexity=30.0, n_jobs=threads, random_state=0).fit(z))
        out["opentsne_s"] = time.perf_counter() - t0
        out["opentsne_trust"] = trust(emb)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
