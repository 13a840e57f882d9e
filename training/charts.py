"""Line-chart geometry for inline SVG: data points scaled into a viewBox, axis ticks, one polyline per series.

Pure functions (no Django, no torch): the training run page renders the result as `<svg>` with no JS library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from annotation.dimensions import DIMENSIONS

# The viewBox and the plot area inside it (room on the left and below for tick labels).
WIDTH, HEIGHT = 640, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 10, 28
# Markers are drawn on each point while a line has few enough of them to stay readable.
MAX_MARKERS = 60
STROKE_STEP = 1.5
DIMENSION_COLOURS = {"aesthetics": "#d97706", "detail": "#0891b2", "alignment": "#7c3aed", "overall": "#16a34a"}


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    colour: str
    points: tuple[tuple[float, float], ...]  # viewBox coordinates
    stroke_width: float = 2.0

    @property
    def svg_points(self) -> str:
        """The `points` attribute of a `<polyline>`."""
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)

    @property
    def markers(self) -> tuple[tuple[float, float], ...]:
        return self.points if len(self.points) <= MAX_MARKERS else ()


@dataclass(frozen=True)
class Tick:
    position: float  # x for the x axis, y for the y axis, in viewBox coordinates
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"


def nice_ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick bounds must be finite")
    if high < low:
        low, high = high, low
    if high == low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12) + 0.0)  # + 0.0 turns -0.0 into 0.0
        value += step
    return ticks


def _format(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _span(values: list[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        low, high = fixed
    else:
        low, high = min(values), max(values)
    if high == low:  # one point, or a flat line: centre it in a band of width 1 (or 10% of the value)
        half = abs(low) * 0.05 or 0.5
        low, high = low - half, high + half
    return low, high


def line_chart(
    series: Sequence[tuple[str, str, str, Iterable[tuple[float, float]]]],
    *,
    y_range: tuple[float, float] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Scale every series' (x, y) points into one viewBox. `series`: (key, label, colour, points) each.

    x grows to the right, y upwards (SVG's y axis points down, so y is flipped). Points with a non-finite
    coordinate are dropped. `y_range` fixes the y axis (e.g. 0 to 1 for accuracies); otherwise it spans the data.
    """
    cleaned = [
        (key, label, colour, [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)])
        for key, label, colour, points in series
    ]
    left, right = float(MARGIN_LEFT), float(width - MARGIN_RIGHT)
    top, bottom = float(MARGIN_TOP), float(height - MARGIN_BOTTOM)
    xs = [x for *_, points in cleaned for x, _ in points]
    ys = [y for *_, points in cleaned for _, y in points]
    if not xs:
        lines = tuple(Line(key, label, colour, ()) for key, label, colour, _ in cleaned)
        return Chart(width, height, left, right, top, bottom, lines, (), ())
    x_low, x_high = _span(xs, None)
    y_low, y_high = _span(ys, y_range)

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - y_low) / (y_high - y_low) * (bottom - top)

    # Earlier series are drawn wider, so a line that a later one covers exactly still shows at its edges.
    lines = tuple(
        Line(
            key,
            label,
            colour,
            tuple((round(sx(x), 2), round(sy(y), 2)) for x, y in points),
            stroke_width=2.0 + STROKE_STEP * (len(cleaned) - 1 - index),
        )
        for index, (key, label, colour, points) in enumerate(cleaned)
    )
    x_ticks = tuple(Tick(round(sx(v), 2), _format(v)) for v in nice_ticks(x_low, x_high) if x_low <= v <= x_high)
    y_ticks = tuple(Tick(round(sy(v), 2), _format(v)) for v in nice_ticks(y_low, y_high) if y_low <= v <= y_high)
    return Chart(width, height, left, right, top, bottom, lines, x_ticks, y_ticks)


def loss_chart(metrics: Mapping) -> Chart:
    """Training loss over steps, from a TrainingRun's `metrics["train"]`."""
    points = [(row["step"], row["loss"]) for row in metrics.get("train", []) if row.get("loss") is not None]
    return line_chart([("loss", "Training loss", "#3457d5", points)])


def validation_chart(metrics: Mapping) -> Chart:
    """Validation accuracy per dimension over steps (0 to 1), from a TrainingRun's `metrics["val"]`."""
    rows = metrics.get("val", [])
    return line_chart(
        [
            (
                dimension.key,
                dimension.label,
                DIMENSION_COLOURS[dimension.key],
                [(row["step"], row[dimension.key]) for row in rows if row.get(dimension.key) is not None],
            )
            for dimension in DIMENSIONS
        ],
        y_range=(0.0, 1.0),
    )
