"""The Python side of failscope's embedding benchmark (`cargo xtask bench`).

Reads an (n, d) float32 .npy of features and times, on the same machine and threads:
  * the SF-Visuals pipeline: scikit-learn PCA(50) then scikit-learn TSNE (Barnes-Hut), in 2-D or
    3-D (SF-Visuals' own view);
  * openTSNE (FFT-interpolated gradients) after the same PCA(50), in 2-D (its FFT method has no
    3-D);
  * with --umap instead: umap-learn after the same PCA(50) (n_neighbors 15, min_dist 0.1, its
    default spectral start, all threads), fitted twice in one process: the first fit compiles
    numba's kernels, the second (warm) is the time reported.
Each method runs in a process of its own, so that its peak resident memory (`VmHWM`, loaded
features included, as failscope's figure includes them) is its own.
Prints one JSON object: seconds, peak MiB and the trustworthiness (k=10) of each embedding on a
fixed subsample — also of failscope's embedding when given. Usage:
  python tsne_reference.py FEATURES.npy THREADS [FAILSCOPE_EMBEDDING.npy] [--dims=2|3] [--skip-sklearn] [--umap]
"""
import json
import subprocess
import sys
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness


def run_one(x, method, dims, threads):
    """Embeds `x` with one method in this process; answers (embedding, seconds)."""
    t0 = time.perf_counter()
    z = PCA(n_components=50, random_state=0).fit_transform(x)
    if method == "umap":
        import umap

        def fit():
            return umap.UMAP(n_components=dims, n_neighbors=15, min_dist=0.1, n_jobs=threads).fit_transform(z)

        fit()  # numba compiles on the first fit
        t0 = time.perf_counter()
        z = PCA(n_components=50, random_state=0).fit_transform(x)
        emb = fit()
    elif method == "sklearn":
        emb = TSNE(n_components=dims, perplexity=30.0, init="pca", random_state=0, n_jobs=threads).fit_transform(z)
    else:
        from openTSNE import TSNE as OpenTSNE

        emb = np.asarray(OpenTSNE(n_components=dims, perplexity=30.0, n_jobs=threads, random_state=0).fit(z))
    return emb, time.perf_counter() - t0


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    dims = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--dims=")), 2)
    only = next((a.split("=")[1] for a in sys.argv if a.startswith("--only=")), None)
    x = np.load(path).astype(np.float32)
    if only is not None:
        # A child: one method; the embedding goes to the path after --only's method.
        out_path = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--out="))
        emb, seconds = run_one(x, only, dims, threads)
        np.save(out_path, emb)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child's figure would be
        # at least its parent's resident size at the fork.
        with open("/proc/self/status") as f:
            peak_mib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
        print(json.dumps({"s": seconds, "peak_mib": peak_mib}))
        return
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(x), size=min(len(x), 5000), replace=False))
    out = {"n": int(x.shape[0]), "d": int(x.shape[1]), "threads": threads, "dims": dims}

    def trust(emb):
        return float(trustworthiness(x[sub], emb[sub], n_neighbors=10))

    extra = [a for a in sys.argv[3:] if not a.startswith("--")]
    if extra:
        out["failscope_trust"] = trust(np.load(extra[0]))
    if "--umap" in sys.argv:
        methods = ["umap"]
    else:
        methods = [] if "--skip-sklearn" in sys.argv else ["sklearn"]
        try:
            import openTSNE  # noqa: F401

            if dims == 2:
                methods.append("opentsne")
        except ImportError:
            pass
    for method in methods:
        emb_path = f"{path}.{method}-{dims}d.npy"
        child = subprocess.run(
            [sys.executable, __file__, path, str(threads), f"--dims={dims}", f"--only={method}", f"--out={emb_path}"],
            check=True,
            capture_output=True,
            text=True,
        )
        res = json.loads(child.stdout.strip().splitlines()[-1])
        out[f"{method}_s"] = res["s"]
        out[f"{method}_peak_mib"] = res["peak_mib"]
        out[f"{method}_trust"] = trust(np.load(emb_path))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
