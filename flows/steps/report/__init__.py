"""The nightly data-quality report's steps: one day's batches -> drift, trend, Data Docs, one page.

    days       which day; the day's ledger entries (scored and quarantined batches); the trend
    drift      PSI and KS per feature, the day's scored rows sampled against the drift
               reference (training split sample) of the model version that scored them
    data_docs  a Great Expectations Data Docs site of the day's validations only
    summary    the report as data: totals, headline, report.json
    plots      matplotlib PNGs
    render     the self-contained HTML page and the Prefect artifact's markdown
    publish    plots + page + report.json into a staging folder, swapped in whole

Plain functions, no Prefect and no MLflow: :mod:`flows.data_quality` wires them into the flow,
and :mod:`flows.registry.report_logging` logs the report to MLflow. The scoring ledger is only
read. Output, replaced whole when the same day is reported again::

    <report.reports_dir>/<YYYY-MM-DD>/report.html      self-contained: CSS inline, plots as
                                                       data: URIs, no script, font or style
                                                       fetched from anywhere
    <report.reports_dir>/<YYYY-MM-DD>/report.json      the numbers of the page
    <report.reports_dir>/<YYYY-MM-DD>/plots/*.png      the plots of the page, as files
    <report.reports_dir>/<YYYY-MM-DD>/data_docs/       GX Data Docs of the day's validations
                                                       (index.html; linked from the page)
"""

from flows.steps.report.data_docs import VALIDATION_SLACK, DataDocs, build_data_docs
from flows.steps.report.days import (
    BatchRow,
    TrendPoint,
    anomaly_rate_trend,
    batches_of_day,
    collect_batches,
    count_rows,
    entry_day,
    parse_report_date,
    utc_timestamp,
)
from flows.steps.report.drift import (
    DRIFT_RULE,
    KS_ALPHA,
    KS_MIN_STATISTIC,
    MAX_DRIFT_ROWS,
    MIN_BATCH_SAMPLE,
    PSI_BINS,
    PSI_DRIFT,
    PSI_EPSILON,
    PSI_FORMULA,
    PSI_WATCH,
    SAMPLE_SEED,
    DriftResult,
    FeatureDrift,
    compute_drift,
    drift_level,
    drift_of_day,
    feature_drift,
    is_drifted,
    ks_test,
    population_stability_index,
    quantile_edges,
    reference_versions,
    sample_parquet,
)
from flows.steps.report.plots import plot_bins, plot_psi, plot_rows, plot_trend, render_plots
from flows.steps.report.publish import publish, remove_leftovers, staging_folder, write_report
from flows.steps.report.render import render_html, render_markdown
from flows.steps.report.summary import DataQualityReport

__all__ = [
    "DRIFT_RULE",
    "KS_ALPHA",
    "KS_MIN_STATISTIC",
    "MAX_DRIFT_ROWS",
    "MIN_BATCH_SAMPLE",
    "PSI_BINS",
    "PSI_DRIFT",
    "PSI_EPSILON",
    "PSI_FORMULA",
    "PSI_WATCH",
    "SAMPLE_SEED",
    "VALIDATION_SLACK",
    "BatchRow",
    "DataDocs",
    "DataQualityReport",
    "DriftResult",
    "FeatureDrift",
    "TrendPoint",
    "anomaly_rate_trend",
    "batches_of_day",
    "build_data_docs",
    "collect_batches",
    "compute_drift",
    "count_rows",
    "drift_level",
    "drift_of_day",
    "entry_day",
    "feature_drift",
    "is_drifted",
    "ks_test",
    "parse_report_date",
    "plot_bins",
    "plot_psi",
    "plot_rows",
    "plot_trend",
    "population_stability_index",
    "publish",
    "quantile_edges",
    "reference_versions",
    "remove_leftovers",
    "render_html",
    "render_markdown",
    "render_plots",
    "sample_parquet",
    "staging_folder",
    "utc_timestamp",
    "write_report",
]
