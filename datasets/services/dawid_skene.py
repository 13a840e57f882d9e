"""The `dawid-skene` labels of a freeze: one Dawid-Skene fit per dimension over every counted judgement.

Every pair with a counted judgement is an item of the fit, complete or not and gold or not, so that each
annotator's confusion matrix is learnt from all of their answers; the freeze then reads the posteriors
of the pairs it selects. The judgements are read as the reliability job reads them (`votes_read`).
"""

from dataclasses import dataclass

import numpy as np

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.consensus import CLASSES, DawidSkeneFit, dawid_skene
from annotation.labeling.reliability import votes_read


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
    votes = votes_read(excluded_annotators=tuple(excluded_annotators))
    fits = {
        key: dawid_skene(
            votes.items, votes.judges, votes.answers[:, index], n_items=votes.n_items, n_judges=len(votes.annotator_ids)
        )
        for index, key in enumerate(DIMENSION_KEYS)
    }
    return DawidSkeneLabels(pair_ids=votes.pair_ids, fits=fits, annotators=len(votes.annotator_ids))
