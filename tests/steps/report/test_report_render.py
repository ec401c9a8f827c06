"""The rendered page and the Prefect artifact's markdown (:mod:`flows.steps.report.render`)."""

from __future__ import annotations

import re

from flows.steps.report import DriftResult, render_html, render_markdown, render_plots


def _rows(page: str, kind: str) -> dict[str, str]:
    """The cells of each ``<tr data-<kind>="name">`` of the page, by name."""
    return dict(re.findall(rf'<tr data-{kind}="([^"]*)">(.*?)</tr>', page))


def test_the_page_is_self_contained_with_tables_and_decodable_plots(busy_report):
    report = busy_report
    report.batches[0].max_psi, report.batches[0].drifted_features = 0.31, ["x"]
    report.batches[0].out_of_range_rows = 4  # scored and marked, with GX's warning line
    report.batches[0].warnings = ["column 'x': values between [0, 1]: 4 of 200 rows outside"]

    images = render_plots(report)
    page = render_html(report, images)

    assert sorted(images) == ["bins", "psi", "rows", "trend"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images.values())
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == 4 == page.count("<img ")
    # nothing fetched from anywhere: no http(s) URL, no external stylesheet or script
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script src" not in page
    for table in ("batches", "drift", "trend"):
        assert f'<table id="{table}">' in page
    assert "&lt;b&gt;x&lt;/b&gt;.csv" in page and "<b>x</b>.csv" not in page  # escaped

    # each batch's row has its own numbers: rows, flagged, rate, and its drift
    batches = _rows(page, "batch")
    assert list(batches) == ["midnight.csv", "offset.parquet", "bad.csv", "gone.csv",
                             "naive.csv", "&lt;b&gt;x&lt;/b&gt;.csv"]
    midnight = batches["midnight.csv"]
    assert ('<td class="num">200</td><td class="num">10</td><td class="num">5.00%</td>'
            '<td class="num" title="column &#x27;x&#x27;: values between [0, 1]: 4 of 200 rows '
            'outside">4</td>' in midnight)
    assert '<td class="num">–</td><td>' in batches["bad.csv"]  # quarantined: not counted
    assert '<td>0.310 <span class="drift">x</span></td>' in midnight
    assert '<span class="pass">passed · scored</span>' in midnight
    assert '<span class="fail">failed · quarantined</span>' in batches["bad.csv"]
    assert '<td class="num">7</td>' in batches["bad.csv"]
    assert "missing column(s) [&#x27;x&#x27;]" in batches["bad.csv"]
    assert '<td class="num">unknown</td>' in batches["gone.csv"]  # rows of a lost file
    assert 'class="drift"' not in batches["naive.csv"]  # no drift measured for it: "–"

    # the drift table: the shifted feature flagged with its PSI, the unchanged one not
    x, y = report.drift.features
    features = _rows(page, "feature")
    assert list(features) == ["x", "y"]
    assert (f'<td class="num">{x.psi:.3f}</td><td class="drift">drift</td>'
            f'<td class="num">{x.ks_statistic:.3f}</td>') in features["x"]
    assert features["x"].endswith("<td><span class=drift>yes</span></td>")
    assert x.psi > 0.2 and f"{x.psi:.3f}" == "0.759"
    assert '<td class="num">0.000</td><td class="stable">stable</td>' in features["y"]
    assert features["y"].endswith("<td>no</td>") and "drift" not in features["y"]
    assert '<span class="drift">Drift in 1 feature(s): x.</span>' in page
    assert "all 553 scored rows of the day against all 100 rows" in page
    # which reference: the version's own, from the registry (not the working copy's split)
    assert ("rows of the training split of model version 2 (its drift reference "
            "<code>data/interim/references/2.parquet</code>, logged when it was registered; the "
            "day is compared with the reference of the version that scored most of its rows"
            ) in page
    # the summary cards
    assert f"<div class=card><b>{x.psi:.3f}</b><span>max PSI</span></div>" in page
    assert "<div class=card><b>1</b><span>drifted features</span></div>" in page
    assert "<div class=card><b>553</b><span>rows scored</span></div>" in page
    assert "<div class=card><b>4</b><span>rows out of the training range</span></div>" in page
    assert report.to_dict()["totals"]["out_of_range_rows"] == 4
    assert "<div class=card><b>unknown</b><span>rows quarantined</span></div>" in page


def test_a_day_without_batches_renders_a_page_that_says_so(make_report):
    report = make_report([], DriftResult(available=False, note="no batch was scored"))

    images = render_plots(report)
    page = render_html(report, images)

    assert sorted(images) == ["trend"]
    assert 'id="no-batches"' in page and "No batches were scored or quarantined" in page
    assert '<p class="note" id="no-drift">no batch was scored</p>' in page
    assert '<table id="batches">' not in page and '<table id="drift">' not in page
    assert page.count("<img ") == 1 and 'id="plot-trend"' in page
    assert '<p class="note">no validations</p>' in page  # the Data Docs note


def test_the_markdown_artifact_has_the_headline_and_the_tables(busy_report, make_report):
    text = render_markdown(busy_report)

    lines = text.splitlines()
    assert lines[0] == "# Data-quality report 2026-05-02"
    assert busy_report.headline() in lines
    busy_report.batches[1].out_of_range_rows = 12
    text = render_markdown(busy_report)
    lines = text.splitlines()
    assert "| midnight.csv | passed | 200 | 10 | 5.00% | – | – |" in lines  # an older entry
    assert any(line.startswith("| offset.parquet | passed |") and line.endswith("| 12 | – |")
               for line in lines)
    assert "| gone.csv | quarantined | unknown | unknown | – | – | – |" in lines
    x = busy_report.drift.features[0]
    assert (f"| x | {x.psi:.3f} | {x.ks_statistic:.3f} | {x.ks_pvalue:.3g} | **yes** |"
            in lines)
    assert "| y | 0.000 | 0.000 | 1 | no |" in lines

    empty = render_markdown(make_report([], DriftResult(available=False, note="nothing")))
    assert "| batch |" not in empty and empty.endswith("Drift: nothing\n")
