"""Scoring speed (shared/BENCHMARK.md, "Speed"): rows per second of the same registered model three
ways (and a fourth for reference), measured side by side in one run, on Shuttle-shaped rows.

    python benchmarks/scoring_throughput.py [--rows 1000000] [--repeats 3] [--use-repo]
                                            [--big [--big-rows 10000000]] [--dask]
                                            [--small-batches 400,1000 [--small-rows 2000]]
                                            [--no-main] [--write]

(a) bare Keras ``predict`` of the detector's network (batch 8192, inputs prepared beforehand);
(a') the same network and inputs through ``FeatureScoreNetwork.contributions``, the compiled
    forward pass the detector (hence the pyfunc and the flow) scores with: the ceiling of (b), (c);
(b) the registered MLflow pyfunc's ``predict`` (``models:/NAME@champion``) on a DataFrame;
(c) the scoring flow (``flows.scoring.scoring_flow``) from a Parquet file to its scored Parquet
    file: alias resolution, validation of every chunk (GX for the first, the quick check for the
    others), scoring, writing, ledger, the MLflow run; run in this
    process the way ``anomaly score`` runs it (Prefect's temporary API,
    :func:`flows.runtime.local_run_settings`).

The rows are sampled with replacement from the Shuttle data shipped in the ``river`` package. The
model is trained by ``anomaly train`` in a temporary project (default settings, ``--epochs`` epochs:
the number of epochs does not change the network, hence not the speed), or is the repo's own
champion with ``--use-repo`` (scored files then go to a temporary folder, not to data/).

``--big`` also scores a ``--big-rows`` (10,000,000) row Parquet file with ``anomaly score`` in a
subprocess and reports its wall time and peak memory (``resource.getrusage`` of the child).
Times are medians of ``--repeats`` rounds after one warm-up; a round runs (a), (a'), (b), (c) one
after the other, and the flow-over-bare ratio of each round is listed too. ``--dask`` adds
(d): the same flow with ``scoring.executor=dask`` on a ``LocalCluster`` of 2 worker processes
started by the run (its start is inside the time, as a user's run pays it), and (e): the same on
an existing 2-worker ``LocalCluster`` passed by ``scoring.dask_address`` (started once before
the rounds; its workers keep the model loaded between runs, as a team's long-lived cluster
does). The 1M-row file is scored in parts of ``scoring.rows_per_task`` rows there. Prints a Markdown
table; ``--write`` puts it into BENCHMARKS.md (section ``scoring-speed``).

``--small-batches N,...`` (section ``scoring-small-batches``): for each N, N Parquet files of
``--small-rows`` (2,000) rows dropped in the incoming folder and scored by one ``anomaly score``
process, against the same N x 2,000 rows as one file, end to end in a subprocess (start-up,
registry, every batch validated, outputs, ledger, the MLflow run), under the default settings
and with ``scoring.gx_every_batch=false``; each timed once (``--no-main`` skips (a)-(c)).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import replace_section  # noqa: E402

BIN = Path(sys.executable).parent


def shuttle_features() -> pd.DataFrame:
    import river.datasets

    df = pd.read_csv(Path(river.datasets.__file__).parent / "shuttle.csv.gz")
    return df.drop(columns=["anomaly"])


def sample_rows(base: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    idx = np.random.default_rng(seed).integers(0, len(base), size=n)
    return base.iloc[idx].reset_index(drop=True)


def write_big_parquet(base: pd.DataFrame, path: Path, n: int, part: int = 1_000_000) -> None:
    """``n`` sampled rows written part by part (never all in memory)."""
    writer = None
    try:
        for i, start in enumerate(range(0, n, part)):
            table = pa.Table.from_pandas(sample_rows(base, min(part, n - start), seed=100 + i),
                                         preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANOMALY_PROJECT_ROOT=str(root),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return env


def train_project(work: Path, epochs: int) -> Path:
    root = work / "project"
    root.mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    print(f"training the default model ({epochs} epochs) with `anomaly train` in {root} ...",
          file=sys.stderr)
    done = subprocess.run(
        [str(BIN / "anomaly"), "train", "--set", f"train.epochs={epochs}"],
        cwd=root, env=child_env(root), capture_output=True, text=True,
    )
    if done.returncode != 0:
        sys.exit(f"`anomaly train` failed:\n{done.stderr[-3000:]}")
    return root


def wall_seconds(fn) -> float:
    """Wall time of one call of ``fn``."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of the temp model")
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="scoring.chunk_rows for the flow (default: params.yaml's)")
    parser.add_argument("--use-repo", action="store_true",
                        help="use the repo's registry (its champion) instead of a temp project")
    parser.add_argument("--big", action="store_true", help="also the 10M-row peak-memory run")
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--dask", action="store_true",
                        help="also the flow on a 2-worker Dask LocalCluster (d)")
    parser.add_argument("--small-batches", default="",
                        help="comma-separated batch counts of the many-small-batches runs")
    parser.add_argument("--small-rows", type=int, default=2000)
    parser.add_argument("--no-main", action="store_true", help="skip (a)-(d) and --big")
    parser.add_argument("--workdir", default=None, help="where temporary files go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()

    counts = [int(c) for c in args.small_batches.split(",") if c.strip()]
    work = Path(tempfile.mkdtemp(prefix="scoring-bench-", dir=args.workdir))
    sections: dict[str, list[str]] = {}
    try:
        root = ROOT if args.use_repo else train_project(work, args.epochs)
        if counts:
            sections["scoring-small-batches"] = small_batches(args, root, work, counts)
            print("\n".join(sections["scoring-small-batches"]))
        if not args.no_main:
            sections["scoring-speed"] = run(args, root, work)
            print("\n".join(sections["scoring-speed"]))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.write:
        for name, rows in sections.items():
            replace_section(ROOT / "BENCHMARKS.md", name, "\n".join(rows))
        print(f"written to {ROOT / 'BENCHMARKS.md'}", file=sys.stderr)


def timed_score(
    root: Path, overrides: list[str], paths: Sequence[Path] = ()
) -> tuple[float, float, str]:
    """One ``anomaly score`` subprocess: (wall seconds, peak RSS in GB, its stdout)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "sys.stdout.write(done.stdout)\n"
        "print(done.returncode, s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(done.stderr[-3000:] if done.returncode else '')\n"
    )
    cmd = [sys.executable, "-c", wrapper, str(BIN / "anomaly"), "score", *map(str, paths)]
    for o in overrides:
        cmd += ["--set", o]
    done = subprocess.run(cmd, cwd=root, env=child_env(root), capture_output=True, text=True)
    try:
        code, seconds, maxrss_kb = done.stdout.split()[-3:]
    except ValueError:
        sys.exit(f"`anomaly score` failed: {done.stdout[-2000:]} {done.stderr[-3000:]}")
    if code != "0":
        sys.exit(f"`anomaly score` exited {code}: {done.stdout[-2000:]} {done.stderr[-3000:]}")
    return float(seconds), int(maxrss_kb) / 1024 / 1024, done.stdout


def dask_note(label: str, local_s: list[float], dask_s: list[float]) -> str:
    """Throughput of dask over local, round by round (the same rows, one after the other)."""
    ratios = [f / d for f, d in zip(local_s, dask_s, strict=True)]
    return (f"Dask ({label}) over local, per round: " + ", ".join(f"{r:.2f}x" for r in ratios)
            + f" (median {statistics.median(ratios):.2f}x; target >= 0.8x); dask seconds per "
            "round: " + ", ".join(f"{d:.2f}" for d in dask_s) + ".")


def small_batches(args: argparse.Namespace, root: Path, work: Path, counts: list[int]) -> list[str]:
    """N small batches against one file of the same rows, through one `anomaly score` each."""
    base = shuttle_features()
    table = [
        "| batches x rows | settings | many batches s | one file s | ratio | per extra batch |",
        "|---|---|---|---|---|---|",
    ]
    for n in counts:
        rows = sample_rows(base, n * args.small_rows, seed=n)
        for label, extra in (("defaults", []), ("`gx_every_batch=false`",
                                                ["scoring.gx_every_batch=false"])):
            runs = {}
            for shape in ("many", "one"):
                folder = work / f"small-{n}-{shape}-{len(extra)}"
                incoming = folder / "incoming"
                incoming.mkdir(parents=True)
                if shape == "one":
                    rows.to_parquet(incoming / "all.parquet", index=False)
                else:
                    arrow = pa.Table.from_pandas(rows, preserve_index=False)
                    for i in range(n):
                        pq.write_table(arrow.slice(i * args.small_rows, args.small_rows),
                                       incoming / f"batch-{i:05d}.parquet")
                overrides = [f"scoring.incoming_dir={incoming}",
                             f"scoring.scored_dir={folder / 'scored'}",
                             f"scoring.quarantine_dir={folder / 'quarantine'}", *extra]
                print(f"scoring {n if shape == 'many' else 1} file(s) ({label}) ...",
                      file=sys.stderr)
                seconds, _, out = timed_score(root, overrides)
                scored = len(list((folder / "scored").glob("*.parquet")))
                expected = n if shape == "many" else 1
                if scored != expected:
                    sys.exit(f"expected {expected} scored files, found {scored}: {out[-2000:]}")
                runs[shape] = seconds
                shutil.rmtree(folder, ignore_errors=True)
            per = (runs["many"] - runs["one"]) / max(n - 1, 1)
            table.append(f"| {n:,} x {args.small_rows:,} | {label} | {runs['many']:.1f} | "
                         f"{runs['one']:.1f} | {runs['many'] / runs['one']:.2f}x | "
                         f"{per * 1000:.0f} ms |")
    notes = [
        "",
        "Each figure is one `anomaly score` subprocess, wall time from start to exit (Python and "
        "TensorFlow start-up, alias resolution, every batch validated against the version's "
        "suite, scored, written, recorded in the ledger; one MLflow run), local executor, "
        f"`scoring.batches_per_task` as in params.yaml; {os.cpu_count()} CPU cores, no GPU. "
        "Targets: many batches at most 2x one file for 400; 1,000 batches under 60 s.",
    ]
    return table + notes


def run(args: argparse.Namespace, root: Path, work: Path) -> list[str]:
    from flows.config import configure_environment, load_params
    from flows.runtime import local_run_settings

    configure_environment(root)
    scoring = work / "scoring"
    overrides = [
        f"scoring.incoming_dir={scoring / 'incoming'}",
        f"scoring.quarantine_dir={scoring / 'quarantine'}",
    ]
    if args.chunk_rows:
        overrides.append(f"scoring.chunk_rows={args.chunk_rows}")
    params = load_params(root / "params.yaml", overrides)

    from anomaly_models.detector import AnomalyDetector
    from anomaly_models.preprocessing import frame_to_inputs
    from flows import registry
    from flows.scoring import scoring_flow

    model, info = registry.load_champion_pyfunc(params.registry, params.retries, root, params.scoring.alias)
    print(f"model: {info.model_uri} (@{info.alias})", file=sys.stderr)
    detector = model.unwrap_python_model().detector  # the very detector the pyfunc runs
    if not isinstance(detector, AnomalyDetector):
        sys.exit(f"{info.model_uri} is not an AnomalyDetector pyfunc")

    base = shuttle_features()
    X = sample_rows(base, args.rows, seed=0)
    n = len(X)
    print(f"{n:,} Shuttle-shaped rows, {X.shape[1]} features", file=sys.stderr)

    # (a) bare Keras predict of the network, inputs prepared once
    network = detector.network_
    inputs = frame_to_inputs(X[list(detector.feature_names_in_)].astype("float32"),
                             network.preprocessing_model)
    warm = {k: v[:8192] for k, v in inputs.items()}
    network.predict(warm, batch_size=8192, verbose=0)

    # (a') the same network through the compiled forward pass that scoring uses
    network.contributions(warm)

    # (b) the registered pyfunc on a DataFrame
    frame = registry.prepare_input(model, X)
    model.predict(frame.iloc[:8192])

    # (c) the scoring flow, Parquet -> Parquet (one warm-up run starts Prefect's temporary API)
    master = work / "batch.parquet"
    X.to_parquet(master, index=False)
    (scoring / "incoming").mkdir(parents=True, exist_ok=True)

    def flow_once(tag: str, source: Path, extra: tuple[str, ...] = ()) -> tuple[float, dict]:
        target = scoring / "incoming" / f"shuttle-{tag}.parquet"
        shutil.copy(source, target)
        run_params = load_params(root / "params.yaml", [
            *overrides, f"scoring.scored_dir={scoring / f'scored-{tag}'}", *extra])
        started = time.perf_counter()
        summary = scoring_flow(params=run_params, root=str(root))
        seconds = time.perf_counter() - started
        if [b.status for b in summary.batches] != ["scored"]:
            sys.exit(f"the flow did not score the batch: {summary.lines()}")
        shutil.rmtree(scoring / f"scored-{tag}", ignore_errors=True)  # 80 MB per run
        return seconds, summary.batches[0].timings or {}

    small = work / "small.parquet"
    X.iloc[:5000].to_parquet(small, index=False)
    # The three paths are measured in rounds, one after the other, so that each round's ratio
    # compares runs made under the same load (these machines are noisy over minutes).
    bare, compiled, pyfunc, flow_runs, dask_runs, address_runs = [], [], [], [], [], []
    on_dask = ("scoring.executor=dask", "scoring.workers=2")
    with local_run_settings(), contextlib.ExitStack() as stack:  # as `anomaly score` runs it
        flow_once("warmup", small)
        if args.dask:
            from distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None))
            on_address = ("scoring.executor=dask", f"scoring.dask_address={cluster.scheduler_address}")
            flow_once("warmup-dask", small, on_dask)
            flow_once("warmup-address", master, on_address)  # the model loaded on both workers
        for i in range(args.repeats):
            bare.append(wall_seconds(lambda: network.predict(inputs, batch_size=8192, verbose=0)))
            compiled.append(wall_seconds(lambda: network.contributions(inputs)))
            pyfunc.append(wall_seconds(lambda: model.predict(frame)))
            flow_runs.append(flow_once(f"r{i}", master))
            if args.dask:
                dask_runs.append(flow_once(f"d{i}", master, on_dask)[0])
                address_runs.append(flow_once(f"e{i}", master, on_address)[0])
    flows_s = [s for s, _ in flow_runs]
    bare_s, compiled_s, pyfunc_s, flow_s = (
        statistics.median(v) for v in (bare, compiled, pyfunc, flows_s)
    )
    ratios = sorted(b / f for b, f in zip(bare, flows_s, strict=True))
    timings = {k: statistics.median(t[k] for _, t in flow_runs) for k in flow_runs[0][1]}

    chunk = params.scoring.chunk_rows
    table = [
        "| path (same model, same rows) | rows | seconds | rows/s | vs bare predict |",
        "|---|---|---|---|---|",
    ]

    def row(name: str, rows: int, seconds: float, ref: float | None) -> str:
        rate = rows / seconds
        ratio = f"{rate / ref:.2f}x" if ref else "1.00x"
        return f"| {name} | {rows:,} | {seconds:.2f} | {rate:,.0f} | {ratio} |"

    bare_rate = n / bare_s
    table.append(row("bare Keras `predict` of the detector's network (batch 8192)", n, bare_s, None))
    table.append(row("the same network's compiled forward pass (`FeatureScoreNetwork.contributions`, "
                     "65,536-row slices: what the pyfunc and the flow run)", n, compiled_s, bare_rate))
    table.append(row("registered MLflow pyfunc `predict` (DataFrame in and out)", n, pyfunc_s,
                     bare_rate))
    table.append(row(f"scoring flow, Parquet -> Parquet (chunk_rows={chunk:,})", n, flow_s,
                     bare_rate))
    if dask_runs:
        parts = params.scoring.rows_per_task
        table.append(row("the same flow with `scoring.executor=dask` on a 2-worker LocalCluster "
                         f"it starts (1 thread each; parts of {parts:,} rows)", n,
                         statistics.median(dask_runs), bare_rate))
        table.append(row("the same flow on an existing 2-worker LocalCluster "
                         "(`scoring.dask_address`, workers warm)", n,
                         statistics.median(address_runs), bare_rate))
    notes = [
        "",
        f"Model: {info.model_uri} ({'the repo registry' if args.use_repo else 'trained by `anomaly train` in a temporary project'}), "
        f"hidden_dims {list(detector.hidden_dims)}, {len(detector.feature_names_in_)} features. "
        f"Medians of {args.repeats} rounds (the four, one after the other) after a "
        f"warm-up; {os.cpu_count()} CPU cores, no GPU.",
        "Flow throughput over bare predict, per round: "
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + f" (median {statistics.median(ratios):.2f}x).",
        "Flow seconds per round: " + ", ".join(f"{s:.2f}" for s in flows_s)
        + "; bare predict: " + ", ".join(f"{s:.2f}" for s in bare) + ".",
        *([dask_note("a cluster started by the run", flows_s, dask_runs),
           dask_note("an existing cluster", flows_s, address_runs)] if dask_runs else []),
        "Inside the flow (median seconds): "
        + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        + "; the rest is Prefect, the registry and the ledger.",
    ]

    if args.big:
        big = work / "big.parquet"
        print(f"writing a {args.big_rows:,}-row Parquet file ...", file=sys.stderr)
        write_big_parquet(base, big, args.big_rows)
        seconds, peak_gb, _ = timed_score(
            root, [*overrides, f"scoring.scored_dir={scoring / 'scored-big'}"], [big])
        rate = args.big_rows / float(seconds)
        notes.append(
            f"`anomaly score` of one {args.big_rows:,}-row Parquet file in a subprocess: "
            f"{float(seconds):.0f} s wall including start-up ({rate:,.0f} rows/s), "
            f"peak RSS {peak_gb:.2f} GB (resource.getrusage of the child; goal: under 2 GB)."
        )
    return table + notes


if __name__ == "__main__":
    main()
