"""The `dawid-skene` labels of a freeze: one Dawid-Skene fit per dimension over every counted judgement.

Every pair with a counted judgement is an item of the fit, complete or not and gold or not, so that each
annotator's confusion matrix is learnt from all of their answers; the freeze then reads the posteriors
of the pairs it selects. Pairs and annotators are numbered by sorted id (np.unique), so the fit of the
same judgements is the same whatever order they are read in.
"""

from array import array
from dataclasses import dataclass

import numpy as np

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.consensus import CLASS_INDEX, CLASSES, DawidSkeneFit, dawid_skene
from datasets import selectors


@dataclass(frozen=True)
class DawidSkeneLabels:
    pair_ids: np.ndarray  # (pairs,): sorted ids of the fitted pairs; row i of each posterior is pair_ids[i]
    fits: dict[str, DawidSkeneFit]  # dimension -> its fit
    annotators: int

    def posteriors(self, pair_id: int) -> dict[str, list[float]]:
        """dimension -> P(first, tie, second) of one fitted pair."""
        index = int(np.searchsorted(self.pair_ids, pair_id))
        if index == len(self.pair_ids) or self.pair_ids[index] != pair_id:
            raise KeyError(f"pair {pair_id} has no counted judgement in the fit")
        return {key: fit.posteriors[index].tolist() for key, fit in self.fits.items()}

    def figures(self) -> dict:
        """What the version's stats record of the fits."""
        per_dimension = {
            key: {
                "iterations": fit.iterations,
                "converged": fit.converged,
                "prior": dict(zip(CLASSES, (round(float(p), 6) for p in fit.prior), strict=True)),
            }
            for key, fit in self.fits.items()
        }
        judgements = int(next(iter(self.fits.values())).judgements.sum()) if self.fits else 0
        return {"pairs": len(self.pair_ids), "annotators": self.annotators, "judgements": judgements, **per_dimension}


def dawid_skene_labels(*, excluded_annotators: list[int]) -> DawidSkeneLabels:
    pairs, annotators = array("q"), array("q")
    answers = {key: array("b") for key in DIMENSION_KEYS}
    for pair_id, annotator_id, *choices in selectors.judgement_answers(excluded_annotators=excluded_annotators):
        pairs.append(pair_id)
        annotators.append(annotator_id)
        for key, choice in zip(DIMENSION_KEYS, choices, strict=True):
            answers[key].append(CLASS_INDEX[choice])
    pair_ids, items = np.unique(np.frombuffer(pairs, dtype=np.int64), return_inverse=True)
    annotator_ids, judges = np.unique(np.frombuffer(annotators, dtype=np.int64), return_inverse=True)
    fits = {
        key: dawid_skene(
            items,
            judges,
            np.frombuffer(answers[key], dtype=np.int8),
            n_items=len(pair_ids),
            n_judges=len(annotator_ids),
        )
        for key in DIMENSION_KEYS
    }
    return DawidSkeneLabels(pair_ids=pair_ids, fits=fits, annotators=len(annotator_ids))
