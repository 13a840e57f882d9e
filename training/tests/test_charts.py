"""Chart geometry of the training run page: data points scaled into the SVG viewBox, ticks, edge cases."""

import math

import pytest

from training.charts import (
    HEIGHT,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    MARGIN_TOP,
    MAX_MARKERS,
    WIDTH,
    line_chart,
    loss_chart,
    nice_ticks,
    validation_chart,
)

LEFT, RIGHT, TOP, BOTTOM = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM


def test_points_span_the_plot_area_with_y_flipped():
    chart = line_chart([("a", "A", "#000", [(0, 2.0), (5, 1.0), (10, 0.0)])])
    assert chart.view_box == f"0 0 {WIDTH} {HEIGHT}"
    assert chart.lines[0].points == ((LEFT, TOP), ((LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2), (RIGHT, BOTTOM))
    assert chart.lines[0].svg_points == f"{LEFT:.1f},{TOP:.1f} {(LEFT + RIGHT) / 2:.1f},{(TOP + BOTTOM) / 2:.1f} " + (
        f"{RIGHT:.1f},{BOTTOM:.1f}"
    )


def test_fixed_y_range_and_shared_x_axis_over_series():
    chart = line_chart([("a", "A", "#000", [(1, 0.5), (3, 1.0)]), ("b", "B", "#111", [(2, 0.0)])], y_range=(0.0, 1.0))
    a, b = chart.lines
    assert a.points == ((LEFT, (TOP + BOTTOM) / 2), (RIGHT, TOP))
    assert b.points == (((LEFT + RIGHT) / 2, BOTTOM),)
    assert [tick.label for tick in chart.y_ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert chart.y_ticks[0].position == BOTTOM and chart.y_ticks[-1].position == TOP
    assert [tick.label for tick in chart.x_ticks] == ["1", "1.5", "2", "2.5", "3"]


def test_one_point_and_flat_lines_are_centred_and_non_finite_points_dropped():
    single = line_chart([("a", "A", "#000", [(7, 0.3)])])
    assert single.lines[0].points == (((LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2),)
    flat = line_chart([("a", "A", "#000", [(0, 2.0), (4, 2.0), (5, math.nan), (6, math.inf)])])
    assert [y for _, y in flat.lines[0].points] == [(TOP + BOTTOM) / 2] * 2
    assert [x for x, _ in flat.lines[0].points] == [LEFT, RIGHT]


def test_empty_series_make_an_empty_chart():
    chart = line_chart([("a", "A", "#000", []), ("b", "B", "#111", [(1, math.nan)])])
    assert chart.empty and chart.x_ticks == () and [line.points for line in chart.lines] == [(), ()]
    assert loss_chart({}).empty and validation_chart({"val": []}).empty


def test_markers_only_for_short_lines():
    short = line_chart([("a", "A", "#000", [(i, i) for i in range(MAX_MARKERS)])])
    long = line_chart([("a", "A", "#000", [(i, i) for i in range(MAX_MARKERS + 1)])])
    assert len(short.lines[0].markers) == MAX_MARKERS and long.lines[0].markers == ()


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (1, 2, [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]),
        (0, 30_000, [0, 10_000, 20_000, 30_000]),
        (-3, 7, [-2, 0, 2, 4, 6]),
        (5, 5, [5]),
        (0.6931, 0.6933, [0.6931, 0.69315, 0.6932, 0.69325, 0.6933]),
    ],
)
def test_nice_ticks(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_loss_and_validation_charts_from_run_metrics():
    metrics = {
        "train": [{"step": 1, "loss": 2.0, "lr": 1e-3}, {"step": 2, "loss": 1.0, "lr": 1e-3}],
        "val": [
            {"step": 1, "aesthetics": 0.5, "detail": 1.0, "alignment": None, "overall": 0.0, "mean": 0.5},
            {"step": 2, "aesthetics": 0.75, "detail": 1.0, "alignment": 0.5, "overall": 0.25, "mean": 0.625},
        ],
    }
    loss = loss_chart(metrics)
    assert [line.key for line in loss.lines] == ["loss"] and loss.lines[0].points == ((LEFT, TOP), (RIGHT, BOTTOM))
    val = validation_chart(metrics)
    assert [line.key for line in val.lines] == ["aesthetics", "detail", "alignment", "overall"]
    assert [len(line.points) for line in val.lines] == [2, 2, 1, 2]  # a None accuracy is no point
    assert val.lines[1].points == ((LEFT, TOP), (RIGHT, TOP))  # accuracy 1 at the top of the 0-1 axis
    assert val.lines[3].points[0] == (LEFT, BOTTOM)
    assert [line.stroke_width for line in val.lines] == [6.5, 5.0, 3.5, 2.0]  # overlapping lines stay visible
