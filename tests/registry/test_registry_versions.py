"""flows.registry.versions: resolving an alias, listing versions, loading the champion (also in a
fresh process), against a REAL MLflow SQLite registry in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from flows import registry
from flows.registry import (
    RegistryError,
    list_versions,
    load_champion_pyfunc,
    resolve_alias,
)

pytestmark = pytest.mark.slow


def test_resolve_alias_errors_say_how_to_fix(tiny_registry, make_registry_params):
    root = tiny_registry.root
    params = make_registry_params(promotion="manual")
    r, retries = params.registry, params.retries
    fresh = root / "fresh-clone"
    with pytest.raises(RegistryError, match=r"no MLflow database at .*anomaly train"):
        resolve_alias(r, retries, fresh, "champion")
    assert not (fresh / "mlflow.db").exists()  # a read-only command creates no database
    reg = tiny_registry.register(params, {"pr_auc": 0.5})
    other = make_registry_params(model_name="other-model")
    with pytest.raises(RegistryError, match=r"no registered model 'other-model'.*anomaly train"):
        list_versions(other.registry, other.retries, root)
    with pytest.raises(RegistryError, match="expectation_suite.json"):
        registry.download_artifact(
            r, retries, root, reg.run_id, registry.SUITE_ARTIFACT, root / "dl"
        )
    with pytest.raises(RegistryError) as err:
        resolve_alias(r, retries, root, params.scoring.alias)
    message = str(err.value)
    assert "no version of model 'tiny-detector' has alias 'champion'" in message
    assert "`anomaly promote VERSION`" in message and "MLflow UI" in message
    assert "registered versions: 1" in message
    with pytest.raises(RegistryError, match="has alias 'shadow'"):
        load_champion_pyfunc(r, retries, root, alias="shadow")


def test_version_info_of_a_resolved_alias(tiny_registry, make_registry_params):
    params = make_registry_params()
    reg = tiny_registry.register(params, {"pr_auc": 0.5})
    info = resolve_alias(params.registry, params.retries, tiny_registry.root, "challenger")
    record = info.to_dict()
    assert record["model_uri"] == "models:/tiny-detector/1" == reg.model_uri
    assert record["aliases"] == ["challenger", "champion"] and record["alias"] == "challenger"
    assert record["run_id"] == reg.run_id and record["status"] == "READY"
    mv = tiny_registry.client().get_model_version("tiny-detector", "1")
    assert record["source"] == mv.source and mv.source.startswith("models:/m-")  # a logged model
    assert record["tags"] == mv.tags and record["tags"]["promotion.decision"] == "champion"
    assert record["created"].endswith("+00:00")


def test_champion_loads_in_a_fresh_process(tiny_registry, make_registry_params, tmp_path):
    root, tiny_model = tiny_registry.root, tiny_registry.model
    params = make_registry_params()
    tiny_registry.register(params, {"pr_auc": 0.5})
    model, info = load_champion_pyfunc(params.registry, params.retries, root, params.scoring.alias)
    in_process = model.predict(tiny_model.batch)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    tiny_model.batch.to_parquet(exchange / "batch.parquet")
    script = textwrap.dedent(
        """
        import json, sys, time
        started = time.perf_counter()
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/tiny-detector@champion")
        loaded = time.perf_counter() - started
        import anomaly_models
        out = model.predict(pd.read_parquet(sys.argv[1]))
        out.to_parquet(sys.argv[2])
        print(json.dumps({"load_s": loaded, "anomaly_models": anomaly_models.__file__}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "PYTHONPATH"}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{root.resolve() / 'mlflow.db'}",
        MLFLOW_DISABLE_TELEMETRY="true",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(exchange / "batch.parquet"),
            str(exchange / "out.parquet"),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"fresh process: {wall:.1f} s wall, load_model {report['load_s']:.1f} s")
    fresh = pd.read_parquet(exchange / "out.parquet")
    assert_frame_equal(fresh, in_process, check_exact=True)
    # anomaly_models came from the model's own code_paths copy, not from this checkout
    assert "/code/anomaly_models/" in report["anomaly_models"]
    assert list(elsewhere.iterdir()) == []  # no ./mlruns or anything else in its cwd
