"""Effect-versus-baseline figure: measured trials at their level, category-placed trials as
hollow markers with a horizontal interval at their latent level's posterior, the regression
band only over the measured range and only when the slope is estimable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection

from nutrimeta.report import figures as figs
from nutrimeta.results import Bundle, LatentLevel

BUNDLE = Path(__file__).parent / "fixtures" / "report" / "zinc_testosterone.json"


def _case(category_only: str | None = "elm2012") -> tuple[Bundle, LatentLevel | None]:
    """The report fixture's total testosterone (six measured levels from 8.9 to 13.4, a
    regression line from 8.5 to 14.0); ``category_only`` loses its level and gets a
    posterior latent level in the continuous meta-regression."""
    b = Bundle.model_validate(json.loads(BUNDLE.read_text(encoding="utf-8")))
    o = b.outcomes["total_testosterone"]
    if category_only is None:
        return b, None
    st = next(s for s in o.studies if s.study_id == category_only)
    st.baseline_status_value_std = None
    lv = LatentLevel(study_id=category_only, subgroup="", category=st.baseline_status_category,
                     mean=8.1, q025=6.0, q975=10.2)
    o.models["meta_regression_continuous"].latent_levels = [lv]
    return b, lv


def _draw(b: Bundle, with_line: bool):  # type: ignore[no-untyped-def]
    o = b.outcomes["total_testosterone"]
    m = o.models["meta_regression_continuous"]
    with figs.figure_style():
        return figs.effect_vs_baseline(o, m if with_line else None, o.label, b.spec.moderator,
                                       m)


def test_band_only_over_measured_range() -> None:
    b, _ = _case(None)
    fig = _draw(b, with_line=True)
    ax = fig.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    xs = bands[0].get_paths()[0].vertices[:, 0]
    levels = [s.baseline_status_value_std for s in b.outcomes["total_testosterone"].studies
              if s.baseline_status_value_std is not None]
    # the stored line runs from 8.5 to 14.0; the band keeps to the measured 8.9 .. 13.4
    assert xs.min() >= min(levels) - 1e-9 and xs.max() <= max(levels) + 1e-9
    assert xs.max() - xs.min() > 0.8 * (max(levels) - min(levels))


def test_no_band_when_slope_not_estimable() -> None:
    b, _ = _case(None)
    fig = _draw(b, with_line=False)
    ax = fig.axes[0]
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert "not estimable" in ax.get_legend().get_title().get_text()


def test_category_placed_trial_drawn_hollow_at_its_latent_posterior() -> None:
    b, lv = _case("elm2012")
    assert lv is not None
    fig = _draw(b, with_line=True)
    ax = fig.axes[0]
    y = next(s.yi for s in b.outcomes["total_testosterone"].studies if s.study_id == "elm2012")
    hollow = [c for c in ax.collections if isinstance(c, PathCollection)
              and np.allclose(c.get_facecolors()[:, :3], 1.0)]
    assert len(hollow) == 1
    assert list(np.asarray(hollow[0].get_offsets())[0]) == pytest.approx([lv.mean, y])
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    seg = np.asarray(bars[0].get_segments()[0])
    assert list(seg[:, 0]) == pytest.approx([lv.q025, lv.q975])
    assert list(seg[:, 1]) == pytest.approx([y, y])
    # the measured trials stay filled at their level; the legend names the difference
    filled = [c for c in ax.collections if isinstance(c, PathCollection) and c not in hollow]
    assert sum(len(c.get_offsets()) for c in filled) == 5
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("status category only: latent level posterior" in t for t in texts)
    assert any("measured level" in t for t in texts)


def test_prior_interval_when_no_model_holds_latent_levels() -> None:
    b, _ = _case("elm2012")
    o = b.outcomes["total_testosterone"]
    o.models["meta_regression_continuous"].latent_levels = None
    with figs.figure_style():
        fig = figs.effect_vs_baseline(o, None, o.label, b.spec.moderator, None)
    ax = fig.axes[0]
    lat = b.spec.moderator.latent["deficient"]
    seg = np.asarray(next(c for c in ax.collections
                          if isinstance(c, LineCollection)).get_segments()[0])
    centre, half = b.spec.moderator.cutoff + lat.mean, 1.959964 * lat.sd
    assert list(seg[:, 0]) == pytest.approx([centre - half, centre + half])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("as declared (prior)" in t for t in texts)


def test_contrast_without_a_posterior_level_falls_back_to_the_declared_prior() -> None:
    b, _ = _case("elm2012")  # elm2012: posterior level; birch2001: category only, no posterior
    o = b.outcomes["total_testosterone"]
    next(s for s in o.studies if s.study_id == "birch2001").baseline_status_value_std = None
    fig = _draw(b, with_line=False)
    ax = fig.axes[0]
    hollow = [c for c in ax.collections if isinstance(c, PathCollection)
              and np.allclose(c.get_facecolors()[:, :3], 1.0)]
    assert len(hollow) == 2  # both drawn: neither is dropped as "no status"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("latent level posterior" in t for t in texts)
    assert any("as declared (prior)" in t for t in texts)
    # only hazel2019 (status unknown, no level) is left out
    assert ax.get_legend().get_title().get_text().startswith("1 trial(s) with neither")
