"""The scaling curve: the power-law fit, its extrapolation and its figure."""

from __future__ import annotations

import numpy as np
import pytest

from silentspeech.figures import scaling_figure
from silentspeech.scaling import fit_power_law, power_law


def test_fit_recovers_a_known_power_law_with_several_points_per_amount():
    hours = [0.25, 0.25, 0.5, 1.0, 2.0, 2.0]
    errors = power_law(60.0, 0.3, hours)
    a, b = fit_power_law(hours, errors)
    assert (a, b) == pytest.approx((60.0, 0.3), rel=1e-12)


def test_extrapolation_follows_the_law():
    assert power_law(60.0, 0.5, [1.0, 4.0, 100.0]) == pytest.approx([60.0, 30.0, 6.0])
    a, b = fit_power_law([1.0, 2.0], [40.0, 20.0])  # halves per doubling: b = 1
    assert b == pytest.approx(1.0) and float(power_law(a, b, 20.0)) == pytest.approx(2.0)


@pytest.mark.parametrize("hours, errors, message", [
    ([1.0, 1.0], [30.0, 20.0], "two distinct amounts"),
    ([1.0, 2.0], [30.0, 0.0], "positive"),
    ([0.0, 2.0], [30.0, 20.0], "positive"),
    ([1.0, 2.0], [30.0], "one length"),
])
def test_fit_refuses_what_has_no_power_law(hours, errors, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(hours, errors)


def test_figure_has_a_panel_per_metric_with_points_and_fitted_line():
    panels = {"beam WER %": {"default": ([0.25, 0.5], [50.0, 40.0], (30.0, 0.32)), "independent": ([0.25], [70.0], None)},
              "beam CER %": {"default": ([0.25, 0.5], [20.0, 15.0], (11.0, 0.4))}}
    figure = scaling_figure(panels, up_to_hours=20.0)
    wer, cer = figure.axes
    assert wer.get_title() == "beam WER %" and wer.get_xscale() == "log" and wer.get_yscale() == "log"
    assert len(wer.lines) == 1 and len(wer.collections) == 2  # one fitted line, two generators' points
    assert np.max(wer.lines[0].get_xdata()) == pytest.approx(20.0)
