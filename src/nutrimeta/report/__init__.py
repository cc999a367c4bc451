"""Report stage: render citable reports from saved results (never refits a model).

:func:`render_evidence_base` writes ``reports/<base>/`` (report.html, report.md, results.json,
figures/, tables/); :func:`render_index` writes ``reports/index.html``.
"""

from nutrimeta.report.render import render_evidence_base, render_evidence_bases, render_index

__all__ = ["render_evidence_base", "render_evidence_bases", "render_index"]
