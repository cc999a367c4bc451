"""Tests of the report stage's speed measures: one layout per figure, parallel rendering of
evidence bases, and start-up without the heavy libraries."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nutrimeta.report import figures as figs
from nutrimeta.report import render_evidence_bases

FIXTURES = Path(__file__).parent / "fixtures" / "report"


def _tight_reference(fig: Figure) -> np.ndarray:
    """The PNG that matplotlib's own ``bbox_inches="tight"`` writes (layout per save)."""
    buf = io.BytesIO()
    with figs.figure_style():
        fig.savefig(buf, format="png", dpi=figs.PNG_DPI, metadata={"Software": None})
    return np.asarray(Image.open(buf).convert("RGB"))


def _figure() -> Figure:
    with figs.figure_style():
        fig = figs.new_figure(5.0, 3.0)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1, 2], [1, 0, 2], color=figs.SHRUNKEN, label="a line")
        ax.set_yticks([0, 1, 2], ["a long tick label", "b", "c"])
        ax.set_xlabel("an axis label\nover two lines")
        ax.set_title("A title", loc="left")
        ax.text(1.02, 0.5, "text beyond the axes", transform=ax.transAxes, clip_on=False)
        fig.legend(loc="outside lower center")
    return fig


def test_saved_png_matches_tight_bbox_savefig(tmp_path: Path) -> None:
    saved = figs.save_figure(_figure(), tmp_path, "fig")
    ours = np.asarray(Image.open(tmp_path / "fig.png").convert("RGB"))
    assert ours.shape == _tight_reference(_figure()).shape
    assert np.array_equal(ours, _tight_reference(_figure()))
    assert saved["png_base64"]
    svg = (tmp_path / "fig.svg").read_text(encoding="utf-8")
    assert "<dc:date>" not in svg and "<text" not in svg  # text drawn as paths


def test_palette_is_seaborn_colorblind() -> None:
    import seaborn as sns

    assert list(sns.color_palette("colorblind", 8)) == figs.PALETTE


@pytest.mark.slow  # renders two reports twice (serial and in 2 processes): about 50 CPU-seconds
def test_parallel_rendering_matches_serial(tmp_path: Path) -> None:
    effects, studies, syntheses = (pd.read_csv(FIXTURES / f"{name}.csv")
                                   for name in ("effects", "studies", "syntheses"))
    bundle = json.loads((FIXTURES / "zinc_testosterone.json").read_text(encoding="utf-8"))
    results = tmp_path / "results"
    results.mkdir()
    paths = []
    for base in ("zinc_testosterone", "zinc_copy"):
        path = results / f"{base}.json"
        path.write_text(json.dumps({**bundle, "evidence_base": base}), encoding="utf-8")
        paths.append(path)

    def jobs(out: Path) -> list[dict[str, object]]:
        return [{"bundle_path": p, "effects": effects, "studies": studies,
                 "syntheses": syntheses, "out_dir": out / p.stem} for p in paths]

    serial = render_evidence_bases(jobs(tmp_path / "serial"), workers=1)
    parallel = render_evidence_bases(jobs(tmp_path / "parallel"), workers=2)
    assert [p.parent.name for p in parallel] == ["zinc_testosterone", "zinc_copy"]
    for s, p in zip(serial, parallel, strict=True):
        files = sorted(f.relative_to(s.parent) for f in s.parent.rglob("*") if f.is_file())
        assert files == sorted(f.relative_to(p.parent) for f in p.parent.rglob("*")
                               if f.is_file())
        assert len(files) > 10
        for f in files:
            assert (s.parent / f).read_bytes() == (p.parent / f).read_bytes(), f


def test_cli_and_pipeline_import_without_heavy_libraries() -> None:
    code = ("import sys, nutrimeta.cli, nutrimeta.pipeline, nutrimeta.validate; "
            "print(sorted(m for m in ('pint', 'scipy.stats', 'matplotlib', 'pymc', 'pytensor', "
            "'nutpie', 'seaborn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_bib_decoding_skips_only_plain_text(tmp_path: Path) -> None:
    """Plain fields pass through undecoded; the result equals bibtexparser's full LaTeX
    decoding on every shipped references.bib and on fields that need decoding."""
    import bibtexparser
    from bibtexparser.middlewares import LatexDecodingMiddleware

    from nutrimeta.report.references import _clean, read_bib

    def full(path: Path) -> dict[str, dict[str, str]]:
        lib = bibtexparser.parse_string(path.read_text(encoding="utf-8"),
                                        append_middleware=[LatexDecodingMiddleware()])
        return {e.key: {"ENTRYTYPE": e.entry_type,
                        **{f.key.lower(): _clean(f.value) for f in e.fields}}
                for e in lib.entries}

    made = tmp_path / "x.bib"
    made.write_text('@article{k1, author = {M{\\"u}ller, A. and others}, title = {Zinc --- '
                    "a review of ``trials''}, pages = {1--9}, journal = {J Nutr}, "
                    "note = {50~mg and 5\\% $\\alpha$}}\n", encoding="utf-8")
    bibs = [made, *sorted((Path(__file__).parents[1] / "data").glob("*/references.bib"))]
    assert len(bibs) >= 3
    for bib in bibs:
        assert read_bib(bib) == full(bib), bib
    got = read_bib(made)["k1"]
    assert got["author"].startswith("Müller") and got["pages"] == "1–9"
    assert got["journal"] == "J Nutr"
