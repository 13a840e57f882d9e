"""A small run of benchmarks/bench_active.py: the whole loop (label -> train -> score -> choose) with the
project's trainer and scorer on the tiny preset, a few training steps a round. The labelling rules are the
product's settings, which the benchmark reads itself; the world is small, but each judge still gets the
product's SPAMMER_MIN_JUDGEMENTS (40) at adaptive's budget, so no spammer rule is loosened for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "--pairs": 500,  # judging is cheap; training (2 steps a round) and scoring 40 test pairs are what cost
    "--test-pairs": 40,
    "--rounds": 2,
    "--round-judgements": 500,
    # 2 spammers (the benchmark's 20%: one random, one always-left) among 10 judges: fixed's 1000 judgements
    # are 100 a judge, adaptive's 600 are 60, both over the product's minimum of 40.
    "--annotators": 10,
    "--steps": 2,
    "--batch": 8,
}
FIXED, ADAPTIVE = 1000, 600  # 60% of fixed's budget: the benchmark's default --adaptive-share


@pytest.fixture(scope="module")
def small_run() -> dict:
    command = [sys.executable, "benchmarks/bench_active.py", "--json", "--seed", "0"]
    command += [str(part) for option in SMALL.items() for part in option]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_benchmark_measures_the_products_labelling_rules(small_run):
    setup = small_run["setup"]
    assert setup["fixed_judgements"] == settings.PAIR_JUDGEMENTS_REQUIRED
    assert (setup["judgements_min"], setup["judgements_max"]) == (
        settings.PAIR_JUDGEMENTS_MIN,
        settings.PAIR_JUDGEMENTS_MAX,
    )
    assert setup["settled_posterior"] == settings.PAIR_SETTLED_POSTERIOR
    assert setup["random_share"] == settings.QUEUE_RANDOM_SHARE
    assert setup["spammer_informativeness"] == settings.SPAMMER_INFORMATIVENESS
    assert setup["spammer_min_judgements"] == settings.SPAMMER_MIN_JUDGEMENTS


def test_dawid_skene_labels_of_adaptive_redundancy_beat_todays_majority_labels(small_run):
    fixed, adaptive = small_run["fixed"], small_run["adaptive"]
    assert (adaptive["judgements"], fixed["judgements"]) == (ADAPTIVE, FIXED)
    # Adaptive's Dawid-Skene labels beat fixed's majority labels on 60% of the judgements ...
    assert adaptive["label_accuracy"]["mean"] > fixed["label_accuracy"]["mean"]
    # ... and the majority vote over adaptive's very judgements.
    assert adaptive["label_accuracy"]["mean"] > adaptive["majority_label_accuracy"]["mean"]
    assert small_run["targets"]["labels_beat_majority"]["met"]


@pytest.mark.parametrize("strategy", ["fixed", "adaptive", "guided"])
def test_spammers_are_flagged_and_honest_judges_are_not(small_run, strategy):
    """With the product's threshold and minimum (SPAMMER_INFORMATIVENESS, SPAMMER_MIN_JUDGEMENTS)."""
    flags = small_run[strategy]["spammers"]
    assert (flags["spammers"], flags["honest"]) == (2, 8)
    assert flags["flagged"] == 2 and flags["false_flags"] == 0, flags
    assert small_run["targets"][f"spammers_{strategy}"]["met"]
    if flags["unmeasured"] == 0:
        assert flags["spammer_informativeness_max"] < settings.SPAMMER_INFORMATIVENESS
        assert flags["honest_informativeness_min"] >= settings.SPAMMER_INFORMATIVENESS


def test_every_strategy_reports_the_figures_the_issue_asks_for(small_run):
    half = SMALL["--round-judgements"]
    for name, budgets in (("fixed", [half, FIXED]), ("adaptive", [300, ADAPTIVE]), ("guided", [300, ADAPTIVE])):
        result = small_run[name]
        assert {"judgements", "label_accuracy", "test_accuracy"} <= set(result)
        assert set(result["test_accuracy"]) == {"aesthetics", "detail", "alignment", "overall", "mean"}
        assert [point["judgements"] for point in result["curve"]] == budgets
        assert all(0.0 <= value <= 1.0 for value in result["test_accuracy"].values())
    # The first round has no model to guide it: guided serves id order, as adaptive does.
    assert small_run["guided"]["curve"][0] == small_run["adaptive"]["curve"][0]
    assert {"guided_equal_compute", "guided_saving", "labels_beat_majority"} <= set(small_run["targets"])
