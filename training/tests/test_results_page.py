"""The staff pages of evaluation results and generator ranking: they show the latest succeeded runs' numbers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import roles
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus
from training.baselines.tables import latest_results, ranking_chart, results_tables
from training.models import EvaluationRun

DIMENSIONS = ("aesthetics", "detail", "alignment", "overall")


def _run(method, benchmark, accuracies, *, kind="imagereward", status=JobStatus.SUCCEEDED, minutes_ago=0):
    return EvaluationRun.objects.create(
        method=method, benchmark=benchmark[-64:], status=status, config={"benchmark": benchmark},
        finished_at=timezone.now() - timedelta(minutes=minutes_ago),
        metrics={"kind": kind, "dimensions": {d: {"accuracy": a, "pairs": 10} for d, a in accuracies.items()}},
    )  # fmt: skip


@pytest.fixture
def runs(db):
    _run("clip", "ir-test", {"overall": 0.512}, minutes_ago=30)  # superseded by the next one
    _run("clip", "ir-test", {"overall": 0.543})
    _run("clip", "ir-test", {"overall": 0.999}, status=JobStatus.FAILED)  # never shown
    _run("mps", "ir-test", {"overall": 0.675})
    _run("hpsv2", "hpd-test", {"overall": 0.833}, kind="hpdv2")
    mhp = "pairs:/var/artifacts/exports/mhp-v1"
    _run("clip", mhp, dict.fromkeys(DIMENSIONS, 0.601), kind="pairs")
    _run("mps", mhp, dict(zip(DIMENSIONS, (0.741, 0.752, 0.763, 0.774), strict=True)), kind="pairs")
    EvaluationRun.objects.create(
        method="mps", benchmark="generator-ranking", status=JobStatus.SUCCEEDED, finished_at=timezone.now(),
        checkpoint_path="/ckpt/mps", config={"benchmark": "generator-ranking"},
        metrics={"dimensions": ["overall"], "prompts": 2, "images": 8, "generators": [
            {"name": "sdxl", "images": 4, "mean": {"overall": 1.25}, "rank": {"overall": 1}},
            {"name": "dalle-2", "images": 2, "mean": {"overall": -0.75}, "rank": {"overall": 2}},
            {"name": "vqgan", "images": 2, "mean": {"overall": -1.5}, "rank": {"overall": 3}},
        ]},
    )  # fmt: skip


def _cells(html: str, table_id_or_class: str, method: str) -> list[str]:
    table = re.search(rf"<table[^>]*{table_id_or_class}[^>]*>(.*?)</table>", html, re.S).group(1)
    row = re.search(rf'<tr data-method="{method}">(.*?)</tr>', table, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_results_page_shows_the_latest_succeeded_runs_as_two_tables(runs, client):
    client.force_login(make_user(roles.ADMIN))
    html = client.get(reverse("training-pages:results")).content.decode()
    assert "<th>ir-test</th><th>hpd-test</th><th>pairs:/var/artifacts/exports/mhp-v1</th>" in html
    assert _cells(html, 'id="benchmark-table"', "CLIP score") == ["CLIP score", "54.3", "–", "60.1"]
    assert _cells(html, 'id="benchmark-table"', "MPS") == ["MPS", "67.5", "–", "77.4"]
    assert _cells(html, 'id="benchmark-table"', "HPS v2") == ["HPS v2", "–", "83.3", "–"]
    assert "generator-ranking" not in html and "99.9" not in html and "51.2" not in html
    assert "MHP accuracy by dimension: pairs:/var/artifacts/exports/mhp-v1" in html
    assert "<th>Aesthetics</th><th>Detail quality</th><th>Semantic alignment</th><th>Overall</th>" in html
    assert _cells(html, 'class="results mhp-table"', "MPS") == ["MPS", "74.1", "75.2", "76.3", "77.4"]
    assert _cells(html, 'class="results mhp-table"', "CLIP score") == ["CLIP score", "60.1", "60.1", "60.1", "60.1"]


def test_generators_page_shows_the_latest_ranking_as_bars(runs, client):
    client.force_login(make_user(roles.ADMIN))
    html = client.get(reverse("training-pages:generators")).content.decode()
    assert "on 2 prompts that every one of them" in html and "/ckpt/mps" in html
    bars = re.findall(r'data-generator="([^"]+)".*?width:([\d.]+)%.*?class="num">([^<]+)<', html, re.S)
    # widths: 8 + 92 * (mean - lowest) / (highest - lowest)
    assert bars == [("sdxl", "100.0", "1.2500"), ("dalle-2", "33.1", "-0.7500"), ("vqgan", "8.0", "-1.5000")]
    assert "<script" not in html  # a CSS chart: no JS libraries, no CDN


def test_pages_are_staff_only_and_empty_states(db, client):
    client.force_login(make_user(roles.ANNOTATOR))
    for name in ("results", "generators"):
        response = client.get(reverse(f"training-pages:{name}"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.logout()
    assert client.get(reverse("training-pages:results")).status_code == 302
    client.force_login(make_user(roles.ADMIN))
    assert 'id="no-results"' in client.get(reverse("training-pages:results")).content.decode()
    assert 'id="no-ranking"' in client.get(reverse("training-pages:generators")).content.decode()


def test_tables_and_chart_helpers():
    rows = latest_results([
        {"method": "mps", "benchmark": "x" * 64, "config": {"benchmark": "pairs:/" + "x" * 70}, "metrics": {}},
        {"method": "mps", "benchmark": "x" * 64, "config": {"benchmark": "pairs:/" + "x" * 70}, "metrics": {"old": 1}},
    ])  # fmt: skip
    assert rows == [{"method": "mps", "benchmark": "pairs:/" + "x" * 70, "metrics": {}}]
    overview, mhp = results_tables(
        [
            {
                "method": "custom",
                "benchmark": "b",
                "metrics": {"kind": "pickapic", "dimensions": {"detail": {"accuracy": 1}}},
            }
        ]
    )
    assert overview.rows == [("custom", [None])] and mhp == []  # no overall result: an empty cell
    chart = ranking_chart({"dimensions": ["overall"], "generators": [
        {"name": "a", "images": 1, "mean": {"overall": 0.5}, "rank": {"overall": 1}},
        {"name": "b", "images": 1, "mean": {"overall": 0.5}, "rank": {"overall": 1}},
    ]})  # fmt: skip
    assert [bar["width"] for bar in chart[0]["bars"]] == [100.0, 100.0]


@pytest.mark.django_db(transaction=True)
def test_generators_chart_renders_in_chromium(runs, browser_login, live_server):
    make_user(roles.ADMIN, username="chart-admin")
    page = browser_login("chart-admin")
    page.goto(f"{live_server.url}{reverse('training-pages:generators')}")
    widths = page.eval_on_selector_all(
        '[data-dimension="overall"] .bar span', "spans => spans.map(s => s.getBoundingClientRect().width)"
    )
    track = page.eval_on_selector('[data-dimension="overall"] .bar', "bar => bar.getBoundingClientRect().width")
    assert [round(width / track, 2) for width in widths] == [1.0, 0.33, 0.08]
