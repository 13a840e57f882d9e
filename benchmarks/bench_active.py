"""Model in the loop, measured: rounds of label -> train -> score -> choose on CPU with the tiny preset.

    python benchmarks/bench_active.py                 # the default run: 24 trainings of 30 tiny steps
    python benchmarks/bench_active.py --quick --json  # a smaller world, a few minutes
    python benchmarks/bench_active.py --jobs 3        # the same figures, the strategies in parallel processes

On 2 cores shared with other work (load 3-6, another run alongside) the default run took 17-18 minutes
(1000 and 1064 s for seeds 0 and 1; 29-43 minutes at load 5-9 earlier: the cost is the 24 trainings and
scoring, which the load slows), guided alone at --adaptive-share 1 7 minutes. Each round's test accuracy moves by up to
0.05-0.09 from training noise alone (see the curves): compare a few --seed values before reading a gap.
Seeds 0-2 under the product's defaults: guided at 60% of the judgements ended +0.055/+0.015/+0.028 over
fixed at equal compute (adaptive +0.054/+0.026/+0.085); at --adaptive-share 1 guided first reached fixed's
final accuracy at never/675/1800 of 1800 judgements. At 240 tiny steps the model is compute-bound: guided
with 1800 judgements ended no better than with 1080 (0.859/0.918/0.859 against 0.919/0.854/0.886), so test
accuracy says more about label quality and training noise than about the number of judgements.

The world: a pool of simulated pairs (training/trainer/simulate.py: brightness, blur and content drawn per
image) whose hidden truth per dimension follows the images' properties, ties included, and a held-out test
set drawn the same way. Annotators of known reliability judge them: honest ones right with a planted
accuracy per dimension (uniform in 0.6-0.95, a wrong answer either other class alike); `--spammer-share`
of them spammers, half answering at random, half always the image shown on the left (the side each
image is shown on is random per judgement, so "left" is first or second at random in canonical order).
Each judgement goes to a judge drawn at random among those who have not judged the pair. The pool (20
judges, 4 of them spammers, by default) is sized so that at adaptive's budget each judge has on average more
judgements (54) than the spammer test's minimum (SPAMMER_MIN_JUDGEMENTS, 40): judges under it cannot be
flagged and are reported as unmeasured (a spammer among them counts as missed).

The labelling rules are the product's: their flags default to mhp/settings.py (PAIR_JUDGEMENTS_REQUIRED,
PAIR_JUDGEMENTS_MIN/MAX, PAIR_SETTLED_POSTERIOR, QUEUE_RANDOM_SHARE, SPAMMER_INFORMATIVENESS,
SPAMMER_MIN_JUDGEMENTS, environment overrides included), so the benchmark measures what the product does.

Each strategy spends a fixed judgement budget per round (adaptive and guided `--adaptive-share` of fixed's,
0.6 by default: the issue's 40% saving), then the model is trained on the labels so far and its accuracy
measured on the test set:
- fixed: today's queue, PAIR_JUDGEMENTS_REQUIRED (3) judgements per pair in id order, majority labels
  (datasets/aggregation.py);
- adaptive: PAIR_JUDGEMENTS_MIN (2) judgements, then judgements_wanted (annotation/labeling/consensus.py)
  up to PAIR_JUDGEMENTS_MAX, with posteriors from the latest Dawid-Skene fit's confusions (refit after each
  round, warm-started), Dawid-Skene labels;
- guided: adaptive, with fresh pairs served in guided_order (annotation/labeling/guided.py) of the current
  model's uncertainty over the unjudged pool (no model yet in the first round: id order).
A pair that a refit leaves unsettled is served again, before fresh pairs, up to the maximum.

Training is the project's Trainer on a JSONL export written each round (the collected labels: one-hot,
0.5/0.5 for a tie); each round continues from the previous round's weights (fresh optimizer and schedule,
`--steps` steps), as a loop that fine-tunes its current model would. Every strategy trains as many steps
per round, so round k's model has had the same compute in each. The tiny model is still improving at the
last round, so reaching fixed's final accuracy at an earlier round would also mean with less training:
hence the default gives adaptive and guided 60% of fixed's budget over the same rounds, and the 40% target
is read at equal compute (the curve also shows the first round that reaches it). `--adaptive-share 1`
compares the strategies at equal judgements round by round.
Scoring is MPSScorer.score_pixels, the scorer the commands use, on images preprocessed once. Test accuracy
leaves out pairs whose hidden truth is a tie (as the trainer's validation does); label accuracy counts
all three classes (first, tie, second) against the hidden truth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
# The labelling rules' defaults are the product's own (mhp/settings.py, environment overrides included);
# reading them needs no database. DEBUG spares the settings a SECRET_KEY, as in the other benchmarks' runs.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhp.settings")
os.environ.setdefault("DEBUG", "1")

from annotation.dimensions import DIMENSION_KEYS  # noqa: E402
from annotation.labeling.consensus import (  # noqa: E402
    CLASS_INDEX,
    CLASSES,
    UNKNOWN_ACCURACY,
    RedundancyPolicy,
    confusion_from_accuracy,
    dawid_skene,
    informativeness,
    judgements_wanted,
    label_posterior,
    looks_like_spammer,
    uniform_prior,
)
from annotation.labeling.guided import guided_order, uncertainty  # noqa: E402
from datasets.aggregation import label_class, label_majority  # noqa: E402

STRATEGIES = ("fixed", "adaptive", "guided")
HONEST_ACCURACY = (0.6, 0.95)
TRAINING_LABELS = {CLASS_INDEX["first"]: [1.0, 0.0], CLASS_INDEX["tie"]: [0.5, 0.5], CLASS_INDEX["second"]: [0.0, 1.0]}
QUICK = {
    "pairs": 300,
    "test_pairs": 200,
    "rounds": 4,
    "round_judgements": 120,
    "annotators": 20,
    "steps": 10,
    "batch": 16,
    "spammer_min_judgements": 10,  # adaptive's 288 judgements are 14 a judge: under the product's minimum
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from django.conf import settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1200, help="the pool of pairs to label")
    parser.add_argument("--test-pairs", type=int, default=400, help="held-out pairs (hidden truth) for test accuracy")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--round-judgements", type=int, default=225, help="fixed's judgement budget per round")
    parser.add_argument(
        "--adaptive-share",
        type=float,
        default=0.6,
        help="adaptive's and guided's budget per round, as a share of fixed's (0.6: the 40%% saving to test)",
    )
    parser.add_argument(
        "--annotators",
        type=int,
        default=20,
        help="the simulated pool: small enough that each judge reaches the spammer test's minimum of judgements "
        "at adaptive's budget (default 1080 judgements: 54 a judge on average)",
    )
    parser.add_argument("--spammer-share", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    parser.add_argument("--batch", type=int, default=32, help="pairs per training step")
    parser.add_argument("--lr", type=float, default=1e-3)
    rules = parser.add_argument_group("the labelling rules (default: the product's settings)")
    for flag, kind, setting in (
        ("--fixed-judgements", int, "PAIR_JUDGEMENTS_REQUIRED"),
        ("--judgements-min", int, "PAIR_JUDGEMENTS_MIN"),
        ("--judgements-max", int, "PAIR_JUDGEMENTS_MAX"),
        ("--settled-posterior", float, "PAIR_SETTLED_POSTERIOR"),
        ("--random-share", float, "QUEUE_RANDOM_SHARE"),
        ("--spammer-informativeness", float, "SPAMMER_INFORMATIVENESS"),
        ("--spammer-min-judgements", int, "SPAMMER_MIN_JUDGEMENTS"),
    ):
        value = getattr(settings, setting)
        rules.add_argument(flag, type=kind, default=value, help=f"settings.{setting} (%(default)s)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="a comma-separated subset")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="strategies run at once, each in its own process (forked after the world is built): the same "
        "figures, as every strategy seeds its own judges, order and training",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"a smaller world: {QUICK} unless given")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    if args.quick:
        given = {arg.split("=")[0].lstrip("-").replace("-", "_") for arg in (argv or sys.argv[1:])}
        for key, value in QUICK.items():
            if key not in given:
                setattr(args, key, value)
    unknown = set(args.strategies.split(",")) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies {sorted(unknown)}; expected some of {', '.join(STRATEGIES)}")
    smallest = args.rounds * args.round_judgements * min(1.0, args.adaptive_share) / args.annotators
    if smallest < args.spammer_min_judgements:  # the judges would go unmeasured and the spammer figure say nothing
        progress(
            f"warning: {smallest:.0f} judgements a judge on average at the smallest budget, under the spammer "
            f"test's minimum of {args.spammer_min_judgements}: fewer --annotators or more judgements"
        )
    return args


# --- the world: pairs with a hidden truth, annotators of known reliability ---------------------------------


@dataclass
class World:
    export: Path  # the simulated export: images/ and pairs.jsonl (whose labels are the hidden truth)
    records: list[dict]  # pool pairs first (split "train"), then the test pairs (split "test")
    truth: np.ndarray  # (pairs, dimensions) class index in CLASSES order
    pool: np.ndarray  # indices of the pool pairs
    test: np.ndarray  # indices of the held-out pairs
    kinds: np.ndarray  # (annotators,) "honest" | "random" | "left"
    accuracy: np.ndarray  # (annotators, dimensions): honest annotators' planted accuracy
    pixels: object = None  # torch [pairs, 2, 3, H, W], preprocessed once for scoring


def build_world(args: argparse.Namespace, folder: Path) -> World:
    from training.trainer.simulate import write_simulated_export

    total = args.pairs + args.test_pairs
    export = write_simulated_export(folder / "pool", pairs=total, seed=args.seed)  # splits unused: pool first
    records = [json.loads(line) for line in (export / "pairs.jsonl").read_text().splitlines()]
    truth = np.array([[CLASS_INDEX[label_class(r["labels"][d])] for d in DIMENSION_KEYS] for r in records])
    rng = np.random.default_rng(args.seed)
    spammers = round(args.annotators * args.spammer_share)
    kinds = ["random"] * (spammers // 2) + ["left"] * (spammers - spammers // 2)
    kinds = np.array(kinds + ["honest"] * (args.annotators - spammers))[rng.permutation(args.annotators)]
    accuracy = rng.uniform(*HONEST_ACCURACY, size=(args.annotators, len(DIMENSION_KEYS)))
    return World(export, records, truth, np.arange(args.pairs), np.arange(args.pairs, total), kinds, accuracy)


def answer(world: World, annotator: int, pair: int, rng: np.random.Generator) -> np.ndarray:
    """One judgement's answers on every dimension, as class indices in the pair's canonical order."""
    kind, truth = world.kinds[annotator], world.truth[pair]
    if kind == "random":
        return rng.integers(0, len(CLASSES), size=len(DIMENSION_KEYS))
    if kind == "left":
        left = CLASS_INDEX["first"] if rng.random() < 0.5 else CLASS_INDEX["second"]
        return np.full(len(DIMENSION_KEYS), left)
    right = rng.random(len(DIMENSION_KEYS)) < world.accuracy[annotator]
    return np.where(right, truth, (truth + rng.integers(1, len(CLASSES), size=len(DIMENSION_KEYS))) % len(CLASSES))


# --- a strategy's queue: who judges what, and the labels that come out ------------------------------------


class Campaign:
    """One strategy's judgements and its current Dawid-Skene fit (per dimension)."""

    def __init__(self, world: World, *, adaptive: bool, policy: RedundancyPolicy, fixed: int, seed: int) -> None:
        self.world, self.adaptive, self.policy, self.fixed = world, adaptive, policy, fixed
        # The same seed for every strategy: the same judge answers the same way in the same circumstances.
        self.rng = np.random.default_rng(seed)
        annotators = len(world.kinds)
        self.items: list[int] = []
        self.judges: list[int] = []
        self.answers: list[np.ndarray] = []
        self.by_pair: dict[int, list[int]] = {}
        self.confusions = np.tile(confusion_from_accuracy(UNKNOWN_ACCURACY), (annotators, len(DIMENSION_KEYS), 1, 1))
        self.priors = np.tile(uniform_prior(), (len(DIMENSION_KEYS), 1))
        self.posteriors: np.ndarray | None = None  # (pool pairs, dimensions, classes) of the latest fit
        self.fitted = False

    @property
    def spent(self) -> int:
        return len(self.items)

    def done(self, pair: int) -> int:
        return len(self.by_pair.get(pair, ()))

    def wanted(self, pair: int) -> int:
        if not self.adaptive:
            return self.fixed
        rows = self.by_pair.get(pair, [])
        judges = [self.judges[row] for row in rows]
        posteriors = [
            label_posterior([self.answers[row][d] for row in rows], self.confusions[judges, d], self.priors[d])
            for d in range(len(DIMENSION_KEYS))
        ]
        return judgements_wanted(len(rows), posteriors, self.policy)

    def fresh(self) -> np.ndarray:
        return np.array([pair for pair in self.world.pool if pair not in self.by_pair], dtype=np.int64)

    def spend(self, budget: int, fresh_order: Iterable[int]) -> None:
        """Serve pairs that still want judgements (id order), then fresh ones in `fresh_order`, one pair at a
        time until it is settled, until `budget` judgements are spent."""
        unsettled = [pair for pair in sorted(self.by_pair) if self.done(pair) < self.wanted(pair)]
        stop = self.spent + budget
        for pair in (*unsettled, *fresh_order):
            while self.spent < stop and self.done(pair) < self.wanted(pair):
                self._judge(int(pair))
            if self.spent >= stop:
                return

    def _judge(self, pair: int) -> None:
        seen = {self.judges[row] for row in self.by_pair.get(pair, [])}
        judge = int(self.rng.choice([j for j in range(len(self.world.kinds)) if j not in seen]))
        self.by_pair.setdefault(pair, []).append(len(self.items))
        self.items.append(pair)
        self.judges.append(judge)
        self.answers.append(answer(self.world, judge, pair, self.rng))

    def refit(self) -> None:
        """Dawid-Skene per dimension over every judgement so far, warm-started from the previous fit."""
        items, judges, answers = np.array(self.items), np.array(self.judges), np.array(self.answers)
        posteriors = []
        for d in range(len(DIMENSION_KEYS)):
            start = {"confusions": self.confusions[:, d], "prior": self.priors[d]} if self.fitted else {}
            fit = dawid_skene(
                items, judges, answers[:, d], n_items=len(self.world.pool), n_judges=len(self.world.kinds), **start
            )
            self.confusions[:, d], self.priors[d] = fit.confusions, fit.prior
            posteriors.append(fit.posteriors)
        self.posteriors, self.fitted = np.stack(posteriors, axis=1), True

    def labelled(self) -> np.ndarray:
        """Pairs with at least the strategy's first round of judgements (3 fixed, the minimum adaptive)."""
        least = self.policy.minimum if self.adaptive else self.fixed
        return np.array([pair for pair in sorted(self.by_pair) if self.done(pair) >= least], dtype=np.int64)

    def majority_labels(self, pairs: np.ndarray) -> np.ndarray:
        """(pairs, dimensions) class index of today's majority vote (a draw for the most votes is a tie)."""
        return np.array([[self._majority(pair, d) for d in range(len(DIMENSION_KEYS))] for pair in pairs]).reshape(
            len(pairs), len(DIMENSION_KEYS)
        )

    def _majority(self, pair: int, dimension: int) -> int:
        choices = [CLASSES[self.answers[row][dimension]] for row in self.by_pair[pair]]
        return CLASS_INDEX[label_class(label_majority(choices))]

    def labels(self, pairs: np.ndarray) -> np.ndarray:
        if not self.adaptive:
            return self.majority_labels(pairs)
        return self.posteriors[pairs].argmax(axis=2)

    def spammer_flags(self, threshold: float, min_judgements: int) -> dict:
        if not self.fitted:
            self.refit()
        counts = np.bincount(np.array(self.judges), minlength=len(self.world.kinds))
        by_dimension = [
            [informativeness(self.confusions[j, d], self.priors[d]) for d in range(len(DIMENSION_KEYS))]
            for j in range(len(self.world.kinds))
        ]
        flagged = np.array([looks_like_spammer(values, threshold) for values in by_dimension])
        flagged &= counts >= min_judgements
        informative = np.mean(by_dimension, axis=1)
        spammer = self.world.kinds != "honest"
        measured = counts >= min_judgements
        return {
            "spammers": int(spammer.sum()),
            "flagged": int((flagged & spammer).sum()),
            "honest": int((~spammer).sum()),
            "false_flags": int((flagged & ~spammer).sum()),
            "unmeasured": int((~measured).sum()),  # too few judgements to be flagged at all
            # Where a threshold would have to lie to separate them (mean informativeness over dimensions):
            "spammer_informativeness_max": _extreme(max, informative[spammer & measured]),
            "honest_informativeness_min": _extreme(min, informative[~spammer & measured]),
        }


def _extreme(pick, values: np.ndarray) -> float | None:
    return float(pick(values)) if len(values) else None


def accuracy_table(hits: np.ndarray, counted: np.ndarray) -> dict:
    """Per dimension hits/counted (columns) and their mean over dimensions."""
    table = {d: float(hits[:, i].sum() / counted[:, i].sum()) for i, d in enumerate(DIMENSION_KEYS)}
    table["mean"] = float(np.mean([table[d] for d in DIMENSION_KEYS]))
    return table


def label_accuracy(world: World, pairs: np.ndarray, labels: np.ndarray) -> dict:
    return accuracy_table(labels == world.truth[pairs], np.ones_like(labels, dtype=bool))


# --- the model: the project's trainer and scorer -----------------------------------------------------------


class Learner:
    """Trains the tiny MPS model with the project's Trainer, each round continuing from the last weights."""

    def __init__(self, world: World, args: argparse.Namespace, folder: Path) -> None:
        self.world, self.args, self.folder = world, args, folder
        self.checkpoint: Path | None = None
        self.model = None

    def train(self, pairs: np.ndarray, labels: np.ndarray, round_index: int) -> None:
        from training.mps import save_checkpoint
        from training.mps.config import SCORING_THRESHOLD
        from training.trainer.config import TrainConfig
        from training.trainer.loop import Trainer

        folder = self.folder / f"round{round_index}"
        self._write_export(folder, pairs, labels)
        config = TrainConfig(
            export_dir=str(folder),
            image_root=str(self.world.export),
            output_dir=str(folder / "run"),
            preset="tiny",
            init_checkpoint=str(self.checkpoint or ""),
            steps=self.args.steps,
            batch_size=self.args.batch,
            lr=self.args.lr,
            warmup_steps=max(1, self.args.steps // 5),
            val_every=self.args.steps,
            num_workers=0,
            precision="fp32",
            log_tensorboard=False,
            seed=self.args.seed + round_index,
            mask_threshold=SCORING_THRESHOLD,  # train with the mask the scorer uses
        )
        trainer = Trainer(config, device="cpu")
        trainer.run()
        self.model = trainer.scorer.model
        self.checkpoint = folder / "model"
        save_checkpoint(self.model, self.checkpoint)
        shutil.rmtree(folder / "run")  # optimizer state: not needed by the next round

    def _write_export(self, folder: Path, pairs: np.ndarray, labels: np.ndarray) -> None:
        folder.mkdir(parents=True)
        with (folder / "pairs.jsonl").open("w", encoding="utf-8") as export:
            for pair, classes in zip(pairs, labels, strict=True):
                record = self.world.records[pair]
                collected = {d: TRAINING_LABELS[int(c)] for d, c in zip(DIMENSION_KEYS, classes, strict=True)}
                export.write(json.dumps({**record, "split": "train", "labels": collected}) + "\n")

    def p_first(self, pairs: np.ndarray) -> np.ndarray:
        """(pairs, dimensions) P(first preferred) from the model's scores, by prompt."""
        import torch

        from training.mps import MPSScorer

        scorer = MPSScorer(self.model, device="cpu", precision="fp32", batch_size=64)
        result = np.zeros((len(pairs), len(DIMENSION_KEYS)))
        prompts = np.array([self.world.records[pair]["prompt"] for pair in pairs])
        for prompt in np.unique(prompts):
            rows = np.flatnonzero(prompts == prompt)
            pixels = self.world.pixels[torch.as_tensor(pairs[rows])].flatten(0, 1)  # [2k, 3, H, W]: first, second
            scores = scorer.score_pixels(str(prompt), pixels, DIMENSION_KEYS)
            for i, d in enumerate(DIMENSION_KEYS):
                pair_scores = scores[d].view(-1, 2).double()
                result[rows, i] = torch.sigmoid(pair_scores[:, 0] - pair_scores[:, 1]).numpy()
        return result

    def test_accuracy(self) -> dict:
        """Per dimension, on held-out pairs whose hidden truth is not a tie."""
        truth = self.world.truth[self.world.test]
        decided = truth != CLASS_INDEX["tie"]
        predicted_first = self.p_first(self.world.test) > 0.5
        return accuracy_table(decided & (predicted_first == (truth == CLASS_INDEX["first"])), decided)


def preprocess_world(world: World) -> None:
    import torch

    from training.mps.preprocess import preprocess_images
    from training.trainer.config import preset_model_config

    size = preset_model_config("tiny").image_size
    paths = [world.export / r[key] for r in world.records for key in ("image_first", "image_second")]
    pixels = torch.cat([preprocess_images(paths[i : i + 256], size) for i in range(0, len(paths), 256)])
    world.pixels = pixels.view(len(world.records), 2, *pixels.shape[1:])


# --- the loop -------------------------------------------------------------------------------------------------


def run_strategy(name: str, world: World, args: argparse.Namespace, folder: Path) -> dict:
    policy = RedundancyPolicy(args.judgements_min, args.judgements_max, args.settled_posterior)
    fixed = args.fixed_judgements
    campaign = Campaign(world, adaptive=name != "fixed", policy=policy, fixed=fixed, seed=args.seed)
    learner = Learner(world, args, folder / name)
    order_rng = np.random.default_rng(args.seed + 1)
    budget = args.round_judgements if name == "fixed" else round(args.round_judgements * args.adaptive_share)
    curve = []
    for round_index in range(args.rounds):
        campaign.spend(budget, fresh_order(name, campaign, learner, args.random_share, order_rng))
        if campaign.adaptive:
            campaign.refit()
        pairs = campaign.labelled()
        labels = campaign.labels(pairs)
        learner.train(pairs, labels, round_index)
        point = {
            "judgements": campaign.spent,
            "pairs": len(pairs),
            "label_accuracy": label_accuracy(world, pairs, labels),
        }
        curve.append(point | {"test_accuracy": learner.test_accuracy()})
        figures = f"labels {point['label_accuracy']['mean']:.3f}, test {curve[-1]['test_accuracy']['mean']:.3f}"
        progress(f"{name} round {round_index + 1}/{args.rounds}: {point['judgements']} judgements, {figures}")
    result = {key: curve[-1][key] for key in ("judgements", "pairs", "label_accuracy", "test_accuracy")}
    if campaign.adaptive:  # today's majority vote over this strategy's very judgements
        result["majority_label_accuracy"] = label_accuracy(world, pairs, campaign.majority_labels(pairs))
    result["spammers"] = campaign.spammer_flags(args.spammer_informativeness, args.spammer_min_judgements)
    return result | {"curve": curve}


def fresh_order(name: str, campaign: Campaign, learner: Learner, random_share: float, rng) -> np.ndarray:
    """The unjudged pairs in serving order: id order, or guided by the current model once there is one."""
    fresh = campaign.fresh()
    if name != "guided" or learner.model is None:
        return fresh
    return fresh[guided_order(uncertainty(learner.p_first(fresh)), random_share=random_share, rng=rng)]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def judgements_to_reach(curve: list[dict], target: float) -> int | None:
    return next((point["judgements"] for point in curve if point["test_accuracy"]["mean"] >= target), None)


def targets(results: dict) -> dict:
    """The issue's three targets, with the figures behind each."""
    checks = {}
    for name in ("adaptive", "guided"):  # the target is guided's; adaptive's shows what the order adds
        if {"fixed", name} <= set(results):
            fixed = results["fixed"]
            # At equal compute (every strategy trains as many steps): the final models, fixed's judgements and
            # this strategy's (a share of them).
            final, fixed_final = results[name]["test_accuracy"]["mean"], fixed["test_accuracy"]["mean"]
            share = results[name]["judgements"] / fixed["judgements"]
            checks[f"{name}_equal_compute"] = {"test_accuracy": final, "fixed_test_accuracy": fixed_final}
            checks[f"{name}_equal_compute"] |= {
                "judgement_share": share,
                "gap": final - fixed_final,
                "met": share <= 0.6 and final >= fixed_final,
            }
            # The first round whose model reaches fixed's final accuracy (with less training, too, if earlier).
            needed = judgements_to_reach(results[name]["curve"], fixed["test_accuracy"]["mean"])
            saving = None if needed is None else 1.0 - needed / fixed["judgements"]
            checks[f"{name}_saving"] = {"judgements_needed": needed, "fixed_judgements": fixed["judgements"]}
            checks[f"{name}_saving"] |= {"saving": saving, "met": saving is not None and saving >= 0.4}
    if "adaptive" in results:
        adaptive = results["adaptive"]
        ds, majority = adaptive["label_accuracy"]["mean"], adaptive["majority_label_accuracy"]["mean"]
        checks["labels_beat_majority"] = {"dawid_skene": ds, "majority": majority, "met": ds > majority}
    for name, result in results.items():
        flags = result["spammers"]
        recall, false_rate = (
            flags["flagged"] / max(flags["spammers"], 1),
            flags["false_flags"] / max(flags["honest"], 1),
        )
        met = recall >= 0.9 and false_rate <= 0.05
        checks[f"spammers_{name}"] = {"recall": recall, "false_flag_rate": false_rate, "met": met}
    return checks


def main(argv: list[str] | None = None) -> dict:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-active-") as folder:
        world = build_world(args, Path(folder))
        preprocess_world(world)
        names = args.strategies.split(",")
        if args.jobs > 1 and len(names) > 1:
            context = multiprocessing.get_context("fork")  # the children share the world's preprocessed pixels
            with ProcessPoolExecutor(min(args.jobs, len(names)), mp_context=context) as pool:
                runs = {name: pool.submit(run_strategy, name, world, args, Path(folder)) for name in names}
                results = {name: run.result() for name, run in runs.items()}
        else:
            results = {name: run_strategy(name, world, args, Path(folder)) for name in names}
    results["targets"] = targets({name: results[name] for name in STRATEGIES if name in results})
    results["setup"] = {key: value for key, value in vars(args).items() if key != "json"}
    results["setup"]["seconds"] = time.perf_counter() - started
    print(json.dumps(results) if args.json else format_results(results))
    return results


# --- the printed tables -------------------------------------------------------------------------------------


def format_results(results: dict) -> str:
    names = [name for name in STRATEGIES if name in results]
    header = f"{'strategy':9} {'judgem.':>7} {'pairs':>5} {'labels':>6} {'maj.':>6} "
    header += (
        " ".join(f"{d[:9]:>9}" for d in (*DIMENSION_KEYS, "mean")) + f" {'spammers':>9} {'false':>5} {'unmeas.':>7}"
    )
    lines = ["final figures (labels: accuracy against the hidden truth; test accuracy per dimension)", header]
    for name in names:
        r = results[name]
        majority = r.get("majority_label_accuracy", r["label_accuracy"])["mean"]
        row = f"{name:9} {r['judgements']:>7} {r['pairs']:>5} {r['label_accuracy']['mean']:>6.3f} {majority:>6.3f} "
        row += " ".join(f"{r['test_accuracy'][d]:>9.3f}" for d in (*DIMENSION_KEYS, "mean"))
        flags = r["spammers"]
        row += f" {flags['flagged']:>4}/{flags['spammers']:<4} {flags['false_flags']:>2}/{flags['honest']:<2} "
        lines.append(row + f"{flags['unmeasured']:>7}")
    lines += ["", "curves (judgements: test mean / label accuracy)"]
    for name in names:
        points = [
            f"{p['judgements']}: {p['test_accuracy']['mean']:.3f}/{p['label_accuracy']['mean']:.3f}"
            for p in results[name]["curve"]
        ]
        lines.append(f"{name:9} " + "  ".join(points))
    lines += ["", "targets"] + [f"{key}: {json.dumps(value)}" for key, value in results["targets"].items()]
    lines.append(f"seconds: {results['setup']['seconds']:.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
