"""The paper's tables from evaluation results: methods x benchmarks, and methods x dimensions on MHP.

Pure Python (no torch, no ORM): the command builds them from its fresh results, the results page from
the latest succeeded EvaluationRun rows; both pass ``{"method", "benchmark", "metrics"}`` mappings whose
``metrics`` is what ``evaluate_scorer`` returns (``kind`` and per-dimension ``dimensions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from annotation.dimensions import DIMENSION_KEYS

from .registry import LABELS, METHODS

PAIRS_KIND = "pairs"
# EvaluationRun.benchmark of `rank_generators`' runs: a ranking, not an accuracy, so not in these tables.
GENERATOR_RANKING = "generator-ranking"
# External benchmarks are reported on the "overall" condition, as in the paper.
BENCHMARK_DIMENSION = "overall"
KIND_ORDER = ("imagereward", "hpdv2", "pickapic", PAIRS_KIND)


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[str, list[float | None]]] = field(default_factory=list)  # (method label, cells)
    title: str = ""


def method_label(method: str) -> str:
    return LABELS.get(method, method)


def _method_order(method: str) -> tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _kind_order(kind: str) -> int:
    """The paper's column order: ImageReward, HPD v2, Pick-a-Pic, then MHP pair sets."""
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _accuracy(metrics: Mapping, dimension: str) -> float | None:
    cell = (metrics.get("dimensions") or {}).get(dimension)
    return cell.get("accuracy") if isinstance(cell, Mapping) else None


def results_tables(results: Iterable[Mapping]) -> tuple[Table, list[Table]]:
    """(methods x benchmarks accuracy on ``overall``, one methods x four dimensions table per MHP pair set)."""
    results = [
        result
        for result in results
        if result["benchmark"] != GENERATOR_RANKING
        and isinstance((result.get("metrics") or {}).get("dimensions"), Mapping)
    ]
    methods = sorted({result["method"] for result in results}, key=_method_order)
    kinds = {result["benchmark"]: result["metrics"].get("kind", "") for result in results}
    benchmarks = sorted(kinds, key=lambda name: (_kind_order(kinds[name]), name))
    found = {(result["method"], result["benchmark"]): result["metrics"] for result in results}
    overview = Table(columns=benchmarks, title="Accuracy by benchmark (overall)")
    for method in methods:
        cells = [_accuracy(found[(method, name)], BENCHMARK_DIMENSION) if (method, name) in found else None
                 for name in benchmarks]  # fmt: skip
        overview.rows.append((method_label(method), cells))
    mhp = []
    for name in benchmarks:
        if not any(found.get((method, name), {}).get("kind") == PAIRS_KIND for method in methods):
            continue
        table = Table(columns=list(DIMENSION_KEYS), title=f"MHP accuracy by dimension: {name}")
        for method in methods:
            if (method, name) in found:
                table.rows.append((method_label(method), [_accuracy(found[(method, name)], d) for d in DIMENSION_KEYS]))
        mhp.append(table)
    return overview, mhp


def format_table(table: Table, *, method_header: str = "method") -> str:
    """Fixed-width text: accuracies as percentages with one decimal, '-' where a method has no result."""
    width = max([len(method_header), *(len(label) for label, _ in table.rows)])
    column_widths = [max(len(column), 6) for column in table.columns]
    header = method_header.ljust(width) + "".join(
        f"  {column:>{size}}" for column, size in zip(table.columns, column_widths, strict=True)
    )
    lines = [table.title, header, "-" * len(header)] if table.title else [header, "-" * len(header)]
    for label, cells in table.rows:
        lines.append(
            label.ljust(width) + "".join(_cell(cell, size) for cell, size in zip(cells, column_widths, strict=True))
        )
    return "\n".join(lines)


def _cell(value: float | None, size: int) -> str:
    return f"  {'-':>{size}}" if value is None else f"  {100 * value:>{size}.1f}"


def format_results(results: Sequence[Mapping]) -> str:
    overview, mhp = results_tables(results)
    return "\n\n".join(format_table(table) for table in (overview, *mhp))


def latest_results(runs: Iterable[Mapping]) -> list[dict]:
    """The first run per (method, benchmark) of ``runs`` (give them newest first), as ``results_tables`` takes
    them; the benchmark is the full spec kept in ``config`` (the row's column keeps a long one's tail)."""
    latest: dict[tuple[str, str], dict] = {}
    for run in runs:
        benchmark = (run.get("config") or {}).get("benchmark") or run["benchmark"]
        latest.setdefault((run["method"], benchmark), {"method": run["method"], "benchmark": benchmark,
                                                        "metrics": run.get("metrics") or {}})  # fmt: skip
    return list(latest.values())


def ranking_chart(metrics: Mapping) -> list[dict]:
    """Per dimension, the generators' bars: ``{"dimension", "bars": [{"name", "mean", "rank", "width"}]}``.

    Scores can be negative, so bars span the range of the means: the lowest gets 8%, the highest 100%."""
    chart = []
    for dimension in metrics.get("dimensions", []):
        rows = sorted(metrics["generators"], key=lambda row: (row["rank"][dimension], row["name"]))
        means = [row["mean"][dimension] for row in rows]
        low, high = min(means), max(means)
        bars = [
            {"name": row["name"], "mean": row["mean"][dimension], "rank": row["rank"][dimension],
             "images": row["images"],
             "width": 100.0 if high == low else round(8 + 92 * (row["mean"][dimension] - low) / (high - low), 1)}
            for row in rows
        ]  # fmt: skip
        chart.append({"dimension": dimension, "bars": bars})
    return chart
