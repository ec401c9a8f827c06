"""The scoring step's :class:`~flows.steps.score.BatchScorer` around a registered pyfunc: the
features from its signature (else the suite), its inputs cast to the signature
(:func:`~flows.registry.inputs.prepare_input`), and the version it records in every row. The
step itself knows nothing of MLflow; the scoring flow builds its scorer here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.registry.inputs import prepare_input
from flows.steps.score import BatchScorer, ModelRef

if TYPE_CHECKING:
    import great_expectations as gx
    from mlflow.pyfunc import PyFuncModel

    from flows.registry.versions import VersionInfo

__all__ = ["model_ref", "pyfunc_scorer"]


def model_ref(info: VersionInfo) -> ModelRef:
    """The version as the scored files and the ledger record it."""
    return ModelRef(
        name=info.name,
        version=int(info.version),
        alias=info.alias,
        uri=info.model_uri,
        run_id=info.run_id,
    )


def pyfunc_scorer(
    model: PyFuncModel, info: VersionInfo, suite: gx.ExpectationSuite | None = None
) -> BatchScorer:
    """A scorer around the registered pyfunc; features from its signature (else the suite).

    Raises:
        ValueError: neither the signature nor the suite names the feature columns.
    """
    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    features: list[str] = []
    if schema is not None and schema.has_input_names():
        features = list(schema.input_names())
    elif suite is not None:
        features = list((suite.meta or {}).get("feature_columns") or [])
    if not features:
        raise ValueError(
            f"{info.model_uri} has no input signature and its suite names no feature "
            "columns; register it with the pipeline (`anomaly train`)"
        )
    meta = dict(getattr(model.metadata, "metadata", None) or {})  # the MLmodel's metadata
    timestamp = meta.get("timestamp_column") or (
        (suite.meta or {}).get("timestamp_column") if suite is not None else None
    )
    return BatchScorer(
        predict=model.predict,
        features=features,
        model=model_ref(info),
        prepare=lambda frame: prepare_input(model, frame),
        context_rows=int(meta.get("context_rows") or 0),
        timestamp_column=timestamp,
    )
