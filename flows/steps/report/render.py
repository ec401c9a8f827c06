"""The report as one self-contained HTML page, and as the markdown of the Prefect artifact.

The page has its CSS inline, the plots as ``data:`` URIs and one inline script (it marks the
page once every image decoded, for a headless browser's check); it fetches nothing from
anywhere, and every link is relative to the report folder.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from flows.steps.report.days import BatchRow, utc_timestamp
from flows.steps.report.drift import DRIFT_RULE, PSI_FORMULA, DriftResult
from flows.steps.report.summary import DataQualityReport

__all__ = ["render_html", "render_markdown"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1100px;padding:1.5rem;color:#212121;background:#fff;line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #e0e0e0;padding-bottom:.2rem}
.meta{color:#616161;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.card{border:1px solid #e0e0e0;border-radius:6px;padding:.5rem .8rem;min-width:7.5rem}
.card b{display:block;font-size:1.3rem}.card span{color:#616161;font-size:.8rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
.drift{color:#c62828;font-weight:600}.moderate{color:#ef8f00}.stable{color:#2e7d32}
.note{background:#fff8e1;border-left:4px solid #ef8f00;padding:.5rem .8rem;margin:.6rem 0}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
small{color:#757575}code{font-size:.85em}tr.today{background:#fff8e1}
"""

# Sets data-images-ok on <body> once the page has loaded: "true" when every image decoded
# (naturalWidth > 0). A headless browser's DOM dump then shows whether the plots render.
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _dash(value: int | None) -> str:
    """A count, or a dash where it does not apply (a quarantined batch)."""
    return "–" if value is None else f"{value:,}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _fixed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pvalue(value: float | None) -> str:
    return "–" if value is None else (f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}")


def _clock(timestamp: str) -> str:
    """``HH:MM:SS`` (UTC) of an ISO timestamp; the text itself when unreadable."""
    ts = utc_timestamp(timestamp)
    return ts.strftime("%H:%M:%S") if ts else timestamp


def _img(name: str, png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="plot-{_e(name)}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: DataQualityReport, images: Mapping[str, bytes]) -> str:
    """The self-contained page: inline CSS, the plots as ``data:`` URIs, one inline script
    (marks the page once every image decoded); every link is relative to the report folder.

    Args:
        report: the day's report.
        images: PNG bytes by plot name (:func:`flows.steps.report.plots.render_plots`); a
            missing name leaves its ``<img>`` out.
    """
    versions = sorted({b.model_version for b in report.batches if b.model_version is not None})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data-quality report {_e(report.date)}</title>
<style>{_CSS}</style>
<script>{_SCRIPT}</script>
</head><body>
<h1>Data-quality report {_e(report.date)} <small>(UTC)</small></h1>
<p class="meta">Generated {_e(report.generated_at)} · model version(s)
{_e(", ".join(map(str, versions)) or "–")} · project <code>{_e(report.root.name)}</code></p>
<div class="cards" id="summary">{_cards_html(report)}</div>
{"".join(f'<p class="note">{_e(n)}</p>' for n in report.notes)}
<h2>Batches</h2>
{_batches_html(report, images)}
<h2>Drift against the training data</h2>
{_drift_html(report.drift, images)}
<h2>Anomaly rate over the last {len(report.trend)} days</h2>
{_trend_html(report, images)}
<h2>Validations</h2>
{_docs_html(report)}
</body></html>
"""


def _cards_html(report: DataQualityReport) -> str:
    """The summary cards: counts, rows, rate, max PSI, drifted features."""
    d = report.drift
    cards = [
        (len(report.batches), "batches"),
        (len(report.scored), "passed · scored"),
        (len(report.quarantined), "failed · quarantined"),
        (f"{report.rows_scored:,}", "rows scored"),
        (_num(report.rows_quarantined), "rows quarantined"),
        (_pct(report.rate), "flagged (anomaly rate)"),
        (f"{report.out_of_range_rows:,}", "rows out of the training range"),
        (_fixed(d.max_psi), "max PSI"),
        (len(d.drifted) if d.available else "–", "drifted features"),
    ]
    return "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                   for v, k in cards)


def _batch_row(b: BatchRow) -> str:
    """One ``<tr data-batch=...>`` of the batches table."""
    status = ('<span class="pass">passed · scored</span>' if b.passed
              else '<span class="fail">failed · quarantined</span>')
    detail = _e(b.output) if b.passed else (
        f"{_e(b.reason)}<br><small>moved to {_e(b.quarantined_to)}; report "
        f"{_e(b.report)}</small>")
    docs = (f'<a href="{_e(b.data_docs_page)}">{b.validations} '
            f'validation{"s" if b.validations != 1 else ""}'
            + (f", {b.validations_failed} failed" if b.validations_failed else "") + "</a>"
            if b.data_docs_page else "–")
    warned = f' title="{_e("; ".join(b.warnings))}"' if b.warnings else ""
    drift = ("–" if b.max_psi is None else
             f"{b.max_psi:.3f}" + (f' <span class="drift">{_e(", ".join(b.drifted_features))}'
                                   "</span>" if b.drifted_features else ""))
    return (
        f'<tr data-batch="{_e(b.batch)}"><td>{_e(b.batch)}</td><td>{status}</td>'
        f'<td class="num">{_num(b.rows)}</td>'
        f'<td class="num">{"–" if b.flagged is None else f"{b.flagged:,}"}</td>'
        f'<td class="num">{_pct(b.rate)}</td>'
        f'<td class="num"{warned}>{_dash(b.out_of_range_rows)}</td>'
        f"<td>{_e(b.model_version)}</td>"
        f'<td title="{_e(b.at)}">{_e(_clock(b.at))}</td><td>{drift}</td><td>{docs}</td>'
        f"<td>{detail}</td></tr>"
    )


def _batches_html(report: DataQualityReport, images: Mapping[str, bytes]) -> str:
    """The batches table and the rows plot, or a note that the day had no batches."""
    if not report.batches:
        return ('<p class="note" id="no-batches">No batches were scored or quarantined '
                f"on {_e(report.date)} (UTC).</p>")
    return (
        '<table id="batches"><thead><tr><th>batch</th><th>validation</th><th>rows</th>'
        "<th>flagged</th><th>rate</th>"
        '<th title="rows with a feature outside the training range (scored and marked '
        "in the out_of_range column; the detector decides whether they are anomalies)\">"
        "out of range</th><th>model version</th><th>time (UTC)</th>"
        "<th>max PSI · drifted</th><th>Data Docs</th><th>output / reason</th></tr></thead>"
        f"<tbody>{''.join(_batch_row(b) for b in report.batches)}</tbody></table>"
        + _img("rows", images.get("rows"), "rows per batch, scored and quarantined")
    )


def _drift_html(d: DriftResult, images: Mapping[str, bytes]) -> str:
    """The drift table with its plots and rule, or the note saying why drift was not measured."""
    if not d.available:
        return f'<p class="note" id="no-drift">{_e(d.note or "drift not measured")}</p>'
    feature_rows = "".join(
        f'<tr data-feature="{_e(f.feature)}"><td>{_e(f.feature)}</td>'
        f'<td class="num">{_fixed(f.psi)}</td><td class="{_e(f.level)}">{_e(f.level)}</td>'
        f'<td class="num">{_fixed(f.ks_statistic)}</td><td class="num">{_pvalue(f.ks_pvalue)}'
        f'</td><td class="num">{_fixed(f.train_mean, 4)}</td>'
        f'<td class="num">{_fixed(f.day_mean, 4)}</td>'
        f"<td>{'<span class=drift>yes</span>' if f.drifted else 'no'}</td></tr>"
        for f in d.features
    )
    sampled = (f"{d.day_sample:,} of {d.day_rows:,} scored rows" if d.day_sample < d.day_rows
               else f"all {d.day_rows:,} scored rows")
    tsampled = (f"{d.training_sample:,} of {d.training_rows:,}"
                if d.training_sample < d.training_rows else f"all {d.training_rows:,}")
    return (
        (f'<p class="note">{_e(d.note)}</p>' if d.note else "")
        + f"<p>{sampled} of the day against {tsampled} rows of the training split of model "
        f"version {_e(d.reference_version)} (its drift reference <code>{_e(d.reference)}</code>"
        ", logged when it was registered; the day is compared with the reference of the version "
        "that scored most of its rows, each batch with its own version's). "
        + (f'<span class="drift">Drift in {len(d.drifted)} feature(s): '
           f"{_e(', '.join(d.drifted))}.</span>" if d.drifted else "No feature drifted.")
        + "</p>"
        '<table id="drift"><thead><tr><th>feature</th><th>PSI</th><th>level</th>'
        "<th>KS statistic D</th><th>KS p-value</th><th>training mean</th><th>day mean</th>"
        f"<th>drifted</th></tr></thead><tbody>{feature_rows}</tbody></table>"
        + _img("psi", images.get("psi"), "PSI per feature")
        + _img("bins", images.get("bins"), "share of rows per training-decile bin")
        + f"<p><small>Rule: {_e(DRIFT_RULE)}. {_e(PSI_FORMULA)}. KS: two-sided two-sample "
        "Kolmogorov-Smirnov test (scipy.stats.ks_2samp).</small></p>"
    )


def _trend_html(report: DataQualityReport, images: Mapping[str, bytes]) -> str:
    """The trend plot and table, the report's day highlighted."""
    trend_rows = "".join(
        f'<tr{" class=today" if p.date == report.date else ""}><td>{_e(p.date)}</td>'
        f'<td class="num">{p.batches:,}</td><td class="num">{p.quarantined:,}</td>'
        f'<td class="num">{p.rows:,}</td><td class="num">{p.flagged:,}</td>'
        f'<td class="num">{_pct(p.rate)}</td></tr>'
        for p in report.trend
    )
    return (
        _img("trend", images.get("trend"), "anomaly rate per day")
        + '<table id="trend"><thead><tr><th>day (UTC)</th><th>batches scored</th>'
        "<th>quarantined</th><th>rows</th><th>flagged</th><th>rate</th></tr></thead>"
        f"<tbody>{trend_rows}</tbody></table>"
    )


def _docs_html(report: DataQualityReport) -> str:
    """The link to the day's Data Docs, or the note saying why there are none."""
    if report.data_docs_index is None:
        return f'<p class="note">{_e(report.data_docs_note or "no Data Docs")}</p>'
    rel = report.data_docs_index.relative_to(report.folder).as_posix()
    n = sum(b.validations for b in report.batches)
    return (f'<p><a id="data-docs" href="{_e(rel)}">Great Expectations Data Docs</a> '
            f"of the day's {n} validation(s) (one per scored chunk; each batch links its "
            "own in the table above).</p><p><small>GX's pages load their styles, and "
            "the index its list of validations, from public CDNs: without internet "
            "access they show unstyled and the index's list stays empty; the per-batch "
            "links above always work.</small></p>")


def render_markdown(report: DataQualityReport) -> str:
    """The Prefect artifact: headline, batches and drift as markdown tables."""
    lines = [f"# Data-quality report {report.date}", "", report.headline(), "",
             f"Page: `{report.html}`", ""]
    if report.batches:
        lines += ["| batch | validation | rows | flagged | rate | out of range | max PSI |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {b.batch} | {'passed' if b.passed else 'quarantined'} | {_num(b.rows)} | "
                  f"{_num(b.flagged)} | {_pct(b.rate)} | {_dash(b.out_of_range_rows)} | "
                  f"{_fixed(b.max_psi)} |"
                  for b in report.batches]
        lines.append("")
    if report.drift.available:
        lines += ["| feature | PSI | KS D | KS p | drifted |", "|---|---:|---:|---:|---|"]
        lines += [f"| {f.feature} | {_fixed(f.psi)} | {_fixed(f.ks_statistic)} | "
                  f"{_pvalue(f.ks_pvalue)} | {'**yes**' if f.drifted else 'no'} |"
                  for f in report.drift.features]
    else:
        lines.append(f"Drift: {report.drift.note}")
    return "\n".join(lines) + "\n"
