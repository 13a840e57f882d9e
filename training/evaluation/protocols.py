"""The published evaluation protocols, as pure functions of human labels and predicted scores.

Pure Python on purpose (no torch, no Django): scores from any model, ours or external, go through
exactly the same code. ``scores`` maps an image key (a path, a uid) to the model's score for that
image under its own prompt.

- ImageReward test: every pair of a prompt's images with different human ranks; correct when the
  better-ranked image has the strictly higher score (an equal score is wrong); micro average over
  all pairs of all prompts.
- HPD v2 test: per prompt, 1 - discordant pairs / all n(n-1)/2 pairs, where a pair tied in the human
  ranks or in the scores is not discordant; macro average over prompts. (The reference code ranks
  scores with argsort, which breaks score ties arbitrarily; we count them as not discordant.)
- Pair sets (Pick-a-Pic, MHP exports): accuracy on the pairs whose label is not a tie (an equal score
  is wrong), and the tie-aware variant over all pairs: the model predicts a tie when
  |p_a - p_b| < threshold with p = softmax of the two scores; full credit when label and prediction
  agree, half credit when exactly one of them is a tie.
- PickScore's tie-aware accuracy, exactly as its ``trainer/scripts/eval_preference_predictor.py``
  computes it: a tie is predicted when |p_1 - p_0| <= threshold (an equal score is always a tie),
  otherwise the higher probability wins; credit 1 / 0.5 / 0 as above; the threshold is the first best
  of 0, 0.1, ..., 1 on the validation pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

# Labels are probabilities (possibly soft vote fractions); closer than this they are a tie.
LABEL_TIE_TOLERANCE = 1e-9
MISSING_SHOWN = 5


class RankedItem(NamedTuple):
    """One prompt of a ranking benchmark: its images and their human ranks (1 = best, ties share)."""

    prompt: str
    images: Sequence[str]
    ranks: Sequence[int]


class LabelledPair(NamedTuple):
    """Two images of one prompt and the human label [p_a, p_b]; [0.5, 0.5] is a tie."""

    image_a: str
    image_b: str
    label: Sequence[float]
    prompt: str = ""


@dataclass(frozen=True)
class ProtocolResult:
    accuracy: float
    pairs: int  # pairs counted in the average
    prompts: int | None = None  # HPD v2 only: the unit of its macro average

    def as_dict(self) -> dict:
        data = {"accuracy": self.accuracy, "pairs": self.pairs}
        if self.prompts is not None:
            data["prompts"] = self.prompts
        return data


class MissingScoresError(ValueError):
    """Some images of the benchmark have no score; the message lists a few of them."""


def check_scores(keys: Iterable[str], scores: Mapping[str, float]) -> None:
    missing = sorted({key for key in keys if key not in scores})
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise MissingScoresError(f"{len(missing)} images have no score: {shown}{more}")


def _item_keys(items: Iterable[RankedItem]) -> Iterator[str]:
    for item in items:
        yield from item.images


def _pair_keys(pairs: Iterable[LabelledPair]) -> Iterator[str]:
    for pair in pairs:
        yield pair.image_a
        yield pair.image_b


def _check_item(item: RankedItem) -> None:
    if len(item.images) != len(item.ranks):
        raise ValueError(f"{len(item.ranks)} ranks for {len(item.images)} images (prompt {item.prompt[:60]!r})")


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def imagereward_accuracy(items: Sequence[RankedItem], scores: Mapping[str, float]) -> ProtocolResult:
    check_scores(_item_keys(items), scores)
    correct = counted = 0
    for item in items:
        _check_item(item)
        for i, j in combinations(range(len(item.images)), 2):
            if item.ranks[i] == item.ranks[j]:
                continue
            counted += 1
            # A lower rank is better, so a correct pair has rank and score differences of opposite
            # signs; an equal score gives 0 and is counted wrong, as in the reference code.
            gap = scores[item.images[i]] - scores[item.images[j]]
            correct += (item.ranks[i] - item.ranks[j]) * gap < 0
    return ProtocolResult(accuracy=correct / counted if counted else 0.0, pairs=counted)


def _prompt_discordance(item: RankedItem, scores: Mapping[str, float]) -> tuple[int, int]:
    """(discordant pairs, all pairs) of one prompt; a tie on either side is not discordant."""
    discordant = total = 0
    for i, j in combinations(range(len(item.images)), 2):
        total += 1
        human = _sign(item.ranks[j] - item.ranks[i])  # +1 when image i is the better one
        model = _sign(scores[item.images[i]] - scores[item.images[j]])
        discordant += human * model < 0
    return discordant, total


def hpdv2_accuracy(items: Sequence[RankedItem], scores: Mapping[str, float]) -> ProtocolResult:
    check_scores(_item_keys(items), scores)
    per_prompt: list[float] = []
    counted = 0
    for item in items:
        _check_item(item)
        discordant, total = _prompt_discordance(item, scores)
        if total == 0:  # a one-image prompt has nothing to order; the reference would divide by zero
            continue
        per_prompt.append(1.0 - discordant / total)
        counted += total
    accuracy = sum(per_prompt) / len(per_prompt) if per_prompt else 0.0
    return ProtocolResult(accuracy=accuracy, pairs=counted, prompts=len(per_prompt))


def label_winner(label: Sequence[float]) -> int:
    """0 when image a is preferred, 1 when image b is, -1 for a tie."""
    if len(label) != 2:
        raise ValueError(f"a pair label is [p_a, p_b], got {list(label)!r}")
    p_a, p_b = label
    if abs(p_a - p_b) <= LABEL_TIE_TOLERANCE:
        return -1
    return 0 if p_a > p_b else 1


def _score_winner(score_a: float, score_b: float) -> int:
    if score_a == score_b:
        return -1
    return 0 if score_a > score_b else 1


def pair_accuracy(pairs: Sequence[LabelledPair], scores: Mapping[str, float]) -> ProtocolResult:
    check_scores(_pair_keys(pairs), scores)
    correct = counted = 0
    for pair in pairs:
        winner = label_winner(pair.label)
        if winner < 0:
            continue
        counted += 1
        correct += _score_winner(scores[pair.image_a], scores[pair.image_b]) == winner
    return ProtocolResult(accuracy=correct / counted if counted else 0.0, pairs=counted)


def preference_gap(score_a: float, score_b: float) -> float:
    """|p_a - p_b| for p = softmax(score_a, score_b), which is tanh(|score_a - score_b| / 2)."""
    # tanh saturates at 1.0 instead of overflowing, whatever the gap between the scores.
    return math.tanh(abs(score_a - score_b) / 2)


def _tie_aware_credits(pair: LabelledPair, scores: Mapping[str, float]) -> tuple[float, float, float]:
    """(preference gap, credit when predicted a tie, credit when predicted not a tie) of one pair."""
    score_a, score_b = scores[pair.image_a], scores[pair.image_b]
    winner = label_winner(pair.label)
    if winner < 0:
        return preference_gap(score_a, score_b), 1.0, 0.5
    return preference_gap(score_a, score_b), 0.5, float(_score_winner(score_a, score_b) == winner)


def pair_accuracy_tie_aware(
    pairs: Sequence[LabelledPair], scores: Mapping[str, float], tie_threshold: float
) -> ProtocolResult:
    if tie_threshold < 0:
        raise ValueError(f"the tie threshold is a probability gap, at least 0; got {tie_threshold}")
    check_scores(_pair_keys(pairs), scores)
    total = 0.0
    for pair in pairs:
        gap, if_tie, if_not_tie = _tie_aware_credits(pair, scores)
        total += if_tie if gap < tie_threshold else if_not_tie
    return ProtocolResult(accuracy=total / len(pairs) if pairs else 0.0, pairs=len(pairs))


def tune_tie_threshold(val_pairs: Sequence[LabelledPair], val_scores: Mapping[str, float]) -> float:
    """The |p_a - p_b| threshold that maximises tie-aware accuracy on validation pairs.

    Candidates: 0 (no predicted ties) and, above each distinct gap, the midpoint to the next one
    (just above the largest one for the last), so every distinct split of the pairs is tried once.
    One sweep over the sorted gaps: O(n log n), not one evaluation per candidate. On equal accuracy
    the smallest threshold wins, the model predicting as few ties as the data allow.
    """
    if not val_pairs:
        raise ValueError("no validation pairs to tune the tie threshold on")
    check_scores(_pair_keys(val_pairs), val_scores)
    credits = sorted(_tie_aware_credits(pair, val_scores) for pair in val_pairs)
    current = sum(if_not_tie for _, _, if_not_tie in credits)  # threshold 0: nothing predicted a tie
    best, best_threshold = current, 0.0
    for index, (gap, if_tie, if_not_tie) in enumerate(credits):
        current += if_tie - if_not_tie
        if index + 1 < len(credits) and credits[index + 1][0] == gap:
            continue  # a threshold cannot separate pairs with the same gap
        if current > best:
            best, best_threshold = (
                current,
                _threshold_above(gap, credits[index + 1][0] if index + 1 < len(credits) else None),
            )
    return best_threshold


def _threshold_above(gap: float, following: float | None) -> float:
    """A threshold that predicts a tie for ``gap`` but not for ``following`` (the next larger gap)."""
    if following is None:
        return math.nextafter(gap, math.inf)
    middle = (gap + following) / 2
    # Two adjacent floats have no float between them; the midpoint then rounds onto one of them.
    return middle if gap < middle < following else following


# PickScore's threshold grid (eval_preference_predictor.main), tried in this order; the first best wins.
PICKSCORE_THRESHOLDS = (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1)


def _pickscore_prediction(score_a: float, score_b: float, threshold: float) -> int:
    """PickScore's get_pred: -1 (tie) at a probability gap <= threshold, else the more probable image."""
    if preference_gap(score_a, score_b) <= threshold:
        return -1
    return 0 if score_a > score_b else 1


def _pickscore_credit(pair: LabelledPair, scores: Mapping[str, float], threshold: float) -> float:
    # Labels of Pick-a-Pic are 1/0, 0/1 or 0.5/0.5, where label_winner agrees with PickScore's get_label.
    label = label_winner(pair.label)
    predicted = _pickscore_prediction(scores[pair.image_a], scores[pair.image_b], threshold)
    if predicted == label:
        return 1.0
    return 0.5 if -1 in (predicted, label) else 0.0


def pickscore_tie_aware_accuracy(
    pairs: Sequence[LabelledPair], scores: Mapping[str, float], threshold: float
) -> ProtocolResult:
    """PickScore's ``calc_acc``: mean credit over all pairs, ties predicted at a gap <= ``threshold``."""
    check_scores(_pair_keys(pairs), scores)
    total = sum(_pickscore_credit(pair, scores, threshold) for pair in pairs)
    return ProtocolResult(accuracy=total / len(pairs) if pairs else 0.0, pairs=len(pairs))


def pickscore_tune_threshold(val_pairs: Sequence[LabelledPair], val_scores: Mapping[str, float]) -> float:
    """PickScore's choice: ``np.argmax`` of the validation accuracies over its grid (the first best)."""
    if not val_pairs:
        raise ValueError("no validation pairs to tune the tie threshold on")
    accuracies = [pickscore_tie_aware_accuracy(val_pairs, val_scores, t).accuracy for t in PICKSCORE_THRESHOLDS]
    return PICKSCORE_THRESHOLDS[accuracies.index(max(accuracies))]
