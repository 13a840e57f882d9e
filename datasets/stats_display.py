"""A frozen version's statistics (`DatasetVersion.stats`) as bar charts for its admin page."""

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

BAR_WIDTH = 240
LABEL_COLOURS = {"first": "#3457d5", "second": "#16a34a", "tie": "#d97706"}


def _bars(totals: dict[str, int]) -> list[dict]:
    """(key, count, bar width) rows, largest first, widths relative to the largest count."""
    top = max(totals.values(), default=0) or 1
    rows = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [{"key": key, "n": n, "width": round(n / top * BAR_WIDTH, 1)} for key, n in rows]


def _summed(per_split: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in per_split.values():
        for key, n in counts.items():
            totals[key] = totals.get(key, 0) + n
    return totals


def _label_rows(labels: dict[str, dict[str, dict[str, int]]]) -> list[dict]:
    """Per dimension, over all splits: label classes as shares of one stacked bar."""
    per_dimension: dict[str, dict[str, int]] = {}
    for per_key in labels.values():
        for key, classes in per_key.items():
            totals = per_dimension.setdefault(key, {})
            for cls, n in classes.items():
                totals[cls] = totals.get(cls, 0) + n
    rows = []
    for key, classes in per_dimension.items():
        total, x, parts = sum(classes.values()) or 1, 0.0, []
        for cls, n in sorted(classes.items()):
            width = round(n / total * BAR_WIDTH, 1)
            fill = LABEL_COLOURS.get(cls, "#8b8f97")
            parts.append({"cls": cls, "n": n, "x": x, "width": width, "share": n / total, "fill": fill})
            x = round(x + width, 1)
        rows.append({"key": key, "parts": parts})
    return rows


def version_stats_html(stats: dict) -> SafeString:
    if not stats:
        return SafeString("-")
    context = {
        "width": BAR_WIDTH,
        "splits": _bars(stats.get("splits", {})),
        "categories": _bars(_summed(stats.get("categories", {}))),
        "generators": _bars(_summed(stats.get("generators", {}))),
        "labels": _label_rows(stats.get("labels", {})),
        "pairs": stats.get("pairs", 0),
    }
    return SafeString(render_to_string("datasets/admin_version_stats.html", context))
