"""Plots read by a person: plain, short tick labels on a flat curve (no "1e-13+3.08e-1"
offset, and no "0.30800000000040")."""

from genlab.viz.plots import _done, subplots


def test_a_flat_curve_gets_short_plain_tick_labels():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot(range(5), [0.308 + i * 1e-13 for i in range(5)])
    _done(fig)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and all(len(text) <= 7 for text in labels), labels
    assert ax.yaxis.get_offset_text().get_text() == ""
    low, high = ax.get_ylim()
    assert low < 0.308 < high  # the curve stays in view


def test_a_curve_that_moves_keeps_its_own_limits():
    fig, ax = subplots(1, 1, figsize=(4, 3))
    ax.plot(range(5), [1.0, 2.0, 3.0, 4.0, 5.0])
    before = ax.get_ylim()
    _done(fig)
    assert ax.get_ylim() == before
