"""The detector the model steps train: ``AnomalyDetector`` arguments from ``params.yaml``.

``model.kind`` choices are the library's table of kinds (:data:`anomaly_models.kinds.KINDS`).
"""

from __future__ import annotations

from typing import Any

from anomaly_models.kinds import KINDS
from flows.columns import require_timestamp_column
from flows.config import ConfigError, Params

__all__ = ["detector_from_params"]


def detector_from_params(params: Params) -> Any:
    """An unfitted :class:`~anomaly_models.detector.AnomalyDetector` configured by ``params``
    (``model.*`` and ``train.*``; for ``lstm_autoencoder`` also ``model.window``, ``stride``,
    ``point_aggregation``, ``smoothing``, ``lstm_units``, ``latent_dim``).

    Raises:
        ConfigError: ``model.kind`` names a detector that is not available, a sequence kind has
            no ``data.timestamp_column``, or the detector rejects a ``model.*`` value (naming it).
    """
    m, t = params.model, params.train
    where = f" [params file: {params.source_file}]" if params.source_file else ""
    if m.kind not in KINDS:
        raise ConfigError(
            f"model.kind: {m.kind} is not available; choose one of {', '.join(KINDS)}"
            + where,
            path=params.source_file,
            keys=["model.kind"],
        )
    require_timestamp_column(params)
    from anomaly_models.detector import AnomalyDetector  # imports Keras: only when needed

    kwargs: dict[str, Any] = {
        "kind": m.kind,
        "hidden_dims": list(m.hidden_dims),
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "learning_rate": t.learning_rate,
        "validation_fraction": t.validation_fraction,
        "patience": t.patience,
        "seed": t.seed,
        "reconstruction_weight": m.reconstruction_weight,
        "distribution_weight": m.distribution_weight,
        "scaling": m.scaling,
        "tail_compression": m.tail_compression,
        "n_neighbors": m.n_neighbors,
        "reference_rows": m.reference_rows,
    }
    if m.is_sequence:
        kwargs.update(
            window=m.window,
            stride=m.stride,
            point_aggregation=m.point_aggregation,
            smoothing=m.smoothing,
            lstm_units=m.lstm_units,
            latent_dim=m.latent_dim,
        )
    try:
        return AnomalyDetector(**kwargs)
    except ValueError as exc:  # the library names its argument: `window` -> model.window
        text = str(exc)
        keys = [f"model.{k}" for k in ("window", "stride", "point_aggregation", "smoothing",
                                        "lstm_units", "latent_dim") if f"`{k}`" in text]
        raise ConfigError(
            f"{', '.join(keys) or 'model'}: {text}{where}",
            path=params.source_file,
            keys=keys or ["model"],
        ) from exc
