"""Running a validation of a frame against a suite in the project's GX file context.

Every validation is stored in the context (``gx/uncommitted/validations``: the record that Data
Docs and the data-quality report show). Two ways to run one:

* with Data Docs (the validate step, a handful of frames): the suite's checkpoint runs and its
  action rebuilds the site;
* without (scoring, batch after batch): the suite's validation definition is run directly and
  the site is rebuilt only for a failure (rebuilding costs ~0.6 s and grows with the number of
  stored results).

GX re-reads its config and looks the suite, the validation definition and the checkpoint up in
its stores at every call, ~0.07 s of a ~0.4 s validation. A :class:`Validator` keeps what it
looked up for the validations without Data Docs, so a scoring run that makes one and passes it
along pays that once per suite; :func:`validate_frame` is the one-off form.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from flows.expectations.context import data_docs_paths, gx_context, gx_run_name, import_gx
from flows.expectations.results import ValidationReport, has_critical_failure, report_of
from flows.expectations.suite import copy_suite, model_inputs, suite_json

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["KEPT_DEFINITIONS", "RESULT_FORMATS", "Validator", "checkpoint", "validate_frame"]

RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")
#: How many suites' validation definitions a :class:`Validator` keeps (the most recent ones).
KEPT_DEFINITIONS = 4
_DATASOURCE, _ASSET, _BATCH_DEF = "pipeline_pandas", "dataframe", "whole_dataframe"


# --------------------------------------------------------------------------- the context's objects
def _batch_definition(ctx: Any) -> Any:
    """The context's whole-dataframe batch definition (data source and asset created once)."""
    try:
        ds = ctx.data_sources.get(_DATASOURCE)
    except (KeyError, ValueError, LookupError):
        ds = ctx.data_sources.add_pandas(_DATASOURCE)
    try:
        asset = ds.get_asset(_ASSET)
    except LookupError:
        asset = ds.add_dataframe_asset(_ASSET)
    try:
        return asset.get_batch_definition(_BATCH_DEF)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(_BATCH_DEF)


def checkpoint(ctx: Any, suite: Any, build_docs: bool = True) -> Any:
    """The context's checkpoint for ``suite`` (suite, validation definition and checkpoint named
    after it), reused as stored when the stored suite is identical: GX's ``add_or_update`` of a
    suite compares expectations pairwise and costs seconds on every call. Without
    ``build_docs`` the checkpoint (``<suite>__no_docs``) runs no Data Docs action."""
    gx = import_gx()
    name = suite.name
    checkpoint_name = name if build_docs else f"{name}__no_docs"
    wanted = suite_json(suite)
    try:
        if suite_json(ctx.suites.get(name)) == wanted:
            ctx.validation_definitions.get(checkpoint_name)
            return ctx.checkpoints.get(checkpoint_name)
    except Exception:  # not stored yet (GX raises different errors per store): create below
        pass
    local = ctx.suites.add_or_update(copy_suite(suite))
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=checkpoint_name, data=_batch_definition(ctx), suite=local)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")] if build_docs else []
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=checkpoint_name,
            validation_definitions=[vd],
            actions=actions,
            result_format={"result_format": "SUMMARY"},
        )
    )


# --------------------------------------------------------------------------- validating
@dataclass(frozen=True)
class _KeptDefinition:
    """What a validation without Data Docs needs, kept between calls: the suite it was looked
    up for (the object, and its JSON), the GX context and the suite's validation definition."""

    suite: Any
    suite_json: dict[str, Any]
    context: Any
    definition: Any


class Validator:
    """Validates frames against suites in the GX file context at ``context_dir``.

    Make one per run that validates batch after batch (a scoring run) and pass it along: the
    validations without Data Docs reuse the context and validation definition it looked up for
    the suite (kept for the ``kept`` most recent suites). Not GX's own ``Validator``. Calls are
    not made thread-safe here: the caller serialises them (GX's file stores are not safe for
    concurrent writers either; scoring holds its GX lock around each).
    """

    def __init__(self, context_dir: str | Path, kept: int = KEPT_DEFINITIONS) -> None:
        self.context_dir = Path(context_dir)
        self.kept = kept
        # (context folder resolved, suite name) -> definition; oldest first (insertion order)
        self._definitions: dict[tuple[str, str], _KeptDefinition] = {}

    def validate(
        self,
        df: pd.DataFrame,
        suite: gx.ExpectationSuite,
        batch_name: str,
        build_docs: bool = True,
        result_format: str = "SUMMARY",
    ) -> ValidationReport:
        """Validate ``df`` against ``suite``; the result is stored in the context.

        The suite's label column (``meta.label_column``), when present in ``df``, is dropped
        first (:func:`~flows.expectations.suite.model_inputs`). With ``build_docs`` the Data
        Docs site is updated; without, it is rebuilt only when a critical expectation fails, and the
        suite's validation definition is run directly, looked up once per suite and Validator.

        ``result_format``: how much GX records per expectation (``SUMMARY``: counts, up to 20
        unexpected values with their counts and row positions; ``BASIC``: counts and up to 20
        unexpected values, ~25 % cheaper).

        Raises:
            ValueError: ``result_format`` is not one of :data:`RESULT_FORMATS`.
        """
        import_gx()
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        if result_format not in RESULT_FORMATS:
            raise ValueError(
                f"result_format must be one of {RESULT_FORMATS}, got {result_format!r}"
            )
        frame = model_inputs(df, suite)
        run_id = RunIdentifier(run_name=gx_run_name(batch_name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GX's deprecation chatter about its own internals
            if build_docs:
                ctx = gx_context(self.context_dir)
                with_docs = checkpoint(ctx, suite, build_docs=True)
                with_docs.result_format = {"result_format": result_format}
                result = with_docs.run(batch_parameters={"dataframe": frame}, run_id=run_id)
                (vri, vr), *_ = result.run_results.items()
            else:
                ctx, definition, vr = self._run_quiet(frame, suite, result_format, run_id)
                vri = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(
                        name=definition.suite.name
                    ),
                    run_id=vr.meta["run_id"],
                    batch_identifier=vr.batch_id,
                )
        # a critical failure without docs gets its page: people will open it (warnings are
        # on the page at the next rebuild; rebuilding costs ~0.6 s)
        refused = not build_docs and has_critical_failure(vr)
        docs = data_docs_paths(ctx, vri, rebuild=refused)
        return report_of(vr, frame, suite, batch_name, docs)

    def _run_quiet(
        self, frame: pd.DataFrame, suite: Any, result_format: str, run_id: Any
    ) -> tuple[Any, Any, Any]:
        """Run the validation definition of ``suite``'s ``<suite>__no_docs`` checkpoint on
        ``frame`` (the result is stored in the context): ``(context, definition, result)``.

        The context and definition are kept for the next call with the same suite: the same
        object (a scoring run loads its suite once; suites are not changed after loading) or an
        equal one (its JSON, ~15 ms to build, is compared only for another object). A kept
        definition that fails to run (its stores changed or were deleted) is looked up again
        once."""
        key = (str(self.context_dir.resolve()), suite.name)
        kept = self._definitions.get(key)
        if kept is not None and (kept.suite is suite or kept.suite_json == suite_json(suite)):
            try:
                return self._run_kept(key, kept, frame, result_format, run_id)
            except Exception:
                pass  # looked up again below; a second failure is raised
        ctx = gx_context(self.context_dir)
        definition = checkpoint(ctx, suite, build_docs=False).validation_definitions[0]
        kept = _KeptDefinition(suite, suite_json(suite), ctx, definition)
        self._definitions.pop(key, None)
        self._definitions[key] = kept
        while len(self._definitions) > self.kept:  # the oldest first (insertion order)
            self._definitions.pop(next(iter(self._definitions)))
        return self._run_kept(key, kept, frame, result_format, run_id)

    def _run_kept(
        self,
        key: tuple[str, str],
        kept: _KeptDefinition,
        frame: pd.DataFrame,
        result_format: str,
        run_id: Any,
    ) -> tuple[Any, Any, Any]:
        """Run a kept definition; one that raises is forgotten (and the error raised)."""
        try:
            result = kept.definition.run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": result_format},
                run_id=run_id,
            )
        except Exception:
            self._definitions.pop(key, None)
            raise
        return kept.context, kept.definition, result


def validate_frame(
    df: pd.DataFrame,
    suite: gx.ExpectationSuite,
    context_dir: str | Path,
    batch_name: str,
    build_docs: bool = True,
    result_format: str = "SUMMARY",
) -> ValidationReport:
    """Validate ``df`` against ``suite`` in the GX file context at ``context_dir``, once: see
    :meth:`Validator.validate`. To validate batch after batch, make one :class:`Validator`
    and call it instead (it keeps the GX objects it looked up)."""
    return Validator(context_dir).validate(
        df, suite, batch_name, build_docs=build_docs, result_format=result_format
    )
