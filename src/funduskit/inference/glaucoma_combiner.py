"""The glaucoma probability from the classifier ensemble *and* the measured vCDR.

The report averages its classifiers' outputs. The vertical cup-to-disc ratio that the disc and cup
segmenters measure is the clinical sign those classifiers look for, and it is measured from
networks trained on many more labelled pixels than the classifier has labelled photographs; on
small training sets it is the steadier signal. ``funduskit tune`` therefore fits, on validation
photographs with labels, a logistic model

    p = sigmoid(b + w1 * z(logit(classifier probability)) + w2 * z(vCDR))

(``z``: standardised with the validation set's mean and standard deviation; L2-regularised,
scikit-learn's :class:`~sklearn.linear_model.LogisticRegression`), and ``funduskit predict``
uses it when the models folder's ``thresholds.json`` holds one. Without it the probability is the
classifiers' mean, as in the report. docs/decisions.md ("Glaucoma: the classifiers and the measured vCDR").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from funduskit.core.errors import FunduskitError

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit.
EPS = 1e-4
#: Fewest photographs of each class a combiner is fitted on.
MIN_PER_CLASS = 4
#: Smallest standard deviation a feature is divided by (a vCDR step of 0.01; a logit of 0.01).
MIN_SCALE = 0.01


def logit(probability: float) -> float:
    """log(p / (1 - p)) of ``probability`` clipped to [EPS, 1 - EPS]."""
    p = min(max(float(probability), EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class GlaucomaCombiner:
    """A fitted logistic model on (classifier logit, vCDR), with its standardisation.

    Attributes:
        weights: coefficients of the standardised classifier logit and vCDR.
        intercept: the model's bias.
        means, scales: the standardisation of (classifier logit, vCDR) on the fitting set.
        images, positives: photographs (and glaucomatous ones among them) it was fitted on.
    """

    weights: tuple[float, float]
    intercept: float
    means: tuple[float, float]
    scales: tuple[float, float]
    images: int
    positives: int

    def probability(self, classifier_probability: float, vcdr: float) -> float:
        """The combined glaucoma probability of one photograph."""
        features = (logit(classifier_probability), float(vcdr))
        score = self.intercept + sum(w * (x - m) / s for w, x, m, s in
                                     zip(self.weights, features, self.means, self.scales))
        if score >= 0:  # the two forms of the sigmoid that cannot overflow
            return 1.0 / (1.0 + math.exp(-score))
        return math.exp(score) / (1.0 + math.exp(score))

    def as_dict(self) -> dict[str, object]:
        return {"features": ["classifier_logit", "vcdr"], **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> GlaucomaCombiner:
        """Read :meth:`as_dict`'s output (``KeyError``/``TypeError``/``ValueError`` when malformed)."""
        def pair(key: str) -> tuple[float, float]:
            first, second = data[key]  # type: ignore[misc]
            return float(first), float(second)

        scales = pair("scales")
        if min(scales) <= 0:
            raise ValueError("scales must be positive")
        return cls(weights=pair("weights"), intercept=float(data["intercept"]),  # type: ignore[arg-type]
                   means=pair("means"), scales=scales, images=int(data["images"]),  # type: ignore[arg-type]
                   positives=int(data["positives"]))  # type: ignore[arg-type]


def fit_combiner(classifier_probabilities: Sequence[float], vcdrs: Sequence[float], labels: Sequence[int], *,
                 regularisation: float = 1.0) -> GlaucomaCombiner:
    """Fit the logistic model on N validation photographs.

    Args:
        classifier_probabilities: (N,) the classifier ensemble's mean probability.
        vcdrs: (N,) the vCDR measured on the predicted masks.
        labels: (N,) 1 = glaucoma, 0 = normal.
        regularisation: scikit-learn's ``C`` (inverse L2 strength) on the standardised features.

    Raises:
        FunduskitError: fewer than :data:`MIN_PER_CLASS` photographs of a class.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=int)
    positives = int(y.sum())
    if min(positives, len(y) - positives) < MIN_PER_CLASS:
        raise FunduskitError(f"the glaucoma combiner needs at least {MIN_PER_CLASS} glaucomatous and "
                             f"{MIN_PER_CLASS} normal photographs; got {positives} and {len(y) - positives}")
    x = np.column_stack([[logit(p) for p in classifier_probabilities], np.asarray(vcdrs, dtype=float)])
    means = x.mean(axis=0)
    scales = np.maximum(x.std(axis=0), MIN_SCALE)  # a feature that hardly varies is not blown up
    model = LogisticRegression(C=regularisation).fit((x - means) / scales, y)
    return GlaucomaCombiner(weights=(float(model.coef_[0, 0]), float(model.coef_[0, 1])),
                            intercept=float(model.intercept_[0]), means=(float(means[0]), float(means[1])),
                            scales=(float(scales[0]), float(scales[1])), images=len(y), positives=positives)
