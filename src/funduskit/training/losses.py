"""The losses of the four tasks, built by name from the configuration (``config.loss``).

Every network returns logits (``funduskit.models``), so the losses take logits and apply the
sigmoid themselves (numerically safe, and allowed under bf16 autocast). Each loss returns a dict
of scalars: ``"loss"`` (what is minimised) and its parts, which the training loop logs.

=================  ======================================================================
name               definition
=================  ======================================================================
``bce``            binary cross-entropy (glaucoma classifier)
``bce_dice``       ``bce_weight * BCE + dice_weight * (1 - soft Dice)`` (disc, cup)
``fovea``          class-balanced BCE on the confidence map + offset loss at the fovea cell
``bce_adversarial``  generator of Son et al. 2019: pixel-wise BCE + ``adversarial_weight`` x
                   BCE(D(photo, G(photo)), real); the discriminator's loss is
                   :func:`discriminator_loss`
=================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funduskit.core.errors import FunduskitError

LossParts = dict[str, Tensor]


def soft_dice(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Mean over the batch of the soft Dice of ``sigmoid(logits)`` and ``target``, both (B, C, H, W)."""
    probability = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    intersection = (probability * target).sum(1)
    return ((2 * intersection + eps) / (probability.sum(1) + target.sum(1) + eps)).mean()


class BCELoss(nn.Module):
    """Binary cross-entropy on logits: (B,) or (B, 1) logits, same-shape 0/1 targets."""

    def forward(self, logits: Tensor, target: Tensor) -> LossParts:
        bce = F.binary_cross_entropy_with_logits(logits.float().reshape(target.shape), target.float())
        return {"loss": bce, "bce": bce}


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * (1 - soft Dice)`` on (B, 1, H, W) logits and masks."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor) -> LossParts:
        bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
        dice = soft_dice(logits, target)
        return {"loss": self.bce_weight * bce + self.dice_weight * (1 - dice), "bce": bce, "soft_dice": dice}


def balanced_bce(logits: Tensor, target: Tensor) -> Tensor:
    """BCE where the positive and the negative cells of each map weigh one half each.

    logits, target: (B, H, W); ``target`` in [0, 1] (one-hot or a soft Gaussian bump). One positive
    cell among thousands would otherwise contribute almost nothing to a plain mean.
    """
    logits = logits.float().flatten(1)
    target = target.float().flatten(1)
    positive = target * F.softplus(-logits)
    negative = (1 - target) * F.softplus(logits)
    positive_mass = target.sum(1).clamp_min(1e-6)
    negative_mass = (1 - target).sum(1).clamp_min(1e-6)
    return (0.5 * positive.sum(1) / positive_mass + 0.5 * negative.sum(1) / negative_mass).mean()


class FoveaLoss(nn.Module):
    """Loss of the fovea localiser's three maps.

    Args:
        confidence_weight: weight of the class-balanced BCE on the confidence map.
        offset_weight: weight of the offset loss, taken only at each image's fovea cell.
        offset_loss: ``"bce"`` (sigmoid outputs against the in-cell offsets in [0, 1]) or ``"l1"``.
        gaussian_sigma: 0 for a one-hot confidence target; > 0 (in cells) for a Gaussian
            neighbourhood around the fovea cell (peak 1).

    ``forward(logits (B, 3, h, w), target (B, 3, h, w))``: target channel 0 is the one-hot
    confidence map, channels 1-2 the x/y offsets in the cell (valid where channel 0 is 1).
    """

    def __init__(self, confidence_weight: float = 1.0, offset_weight: float = 1.0,
                 offset_loss: str = "bce", gaussian_sigma: float = 0.0):
        super().__init__()
        if offset_loss not in ("bce", "l1"):
            raise FunduskitError(f"fovea offset_loss must be 'bce' or 'l1', not {offset_loss!r}")
        self.confidence_weight = confidence_weight
        self.offset_weight = offset_weight
        self.offset_loss = offset_loss
        self.gaussian_sigma = gaussian_sigma

    def _confidence_target(self, one_hot: Tensor) -> Tensor:
        if self.gaussian_sigma <= 0:
            return one_hot
        height, width = one_hot.shape[-2:]
        flat_index = one_hot.flatten(1).argmax(1)
        rows, cols = flat_index // width, flat_index % width
        y = torch.arange(height, device=one_hot.device, dtype=torch.float32).view(1, -1, 1)
        x = torch.arange(width, device=one_hot.device, dtype=torch.float32).view(1, 1, -1)
        squared = (y - rows.view(-1, 1, 1)) ** 2 + (x - cols.view(-1, 1, 1)) ** 2
        return torch.exp(-squared / (2 * self.gaussian_sigma**2))

    def forward(self, logits: Tensor, target: Tensor) -> LossParts:
        logits = logits.float()
        one_hot = target[:, 0].float()
        confidence = balanced_bce(logits[:, 0], self._confidence_target(one_hot))
        cell = one_hot.unsqueeze(1).expand(-1, 2, -1, -1) > 0.5  # (B, 2, h, w): the fovea cell
        offset_logits = logits[:, 1:3][cell]
        offset_target = target[:, 1:3].float()[cell]
        if offset_logits.numel() == 0:
            offset = logits.sum() * 0.0
        elif self.offset_loss == "bce":
            offset = F.binary_cross_entropy_with_logits(offset_logits, offset_target)
        else:
            offset = F.l1_loss(torch.sigmoid(offset_logits), offset_target)
        loss = self.confidence_weight * confidence + self.offset_weight * offset
        return {"loss": loss, "confidence_bce": confidence, "offset": offset}


class GeneratorAdversarialLoss(nn.Module):
    """Son et al. 2019 generator objective: pixel BCE(G(x), y) + ``adversarial_weight`` * BCE(D(x, G(x)), 1).

    The published code (V-GAN) weighs the adversarial term by ``1 / ratio_gan2seg`` with
    ``ratio_gan2seg = 10`` in the paper's best setting, i.e. ``adversarial_weight = 0.1``.

    ``dice_weight`` > 0 adds ``dice_weight * (1 - soft Dice)`` (not in Son et al.; the cpu preset
    uses it to learn thin vessels in fewer epochs).

    ``forward(logits (B, 1, H, W), target (B, 1, H, W), fake_scores)``: ``fake_scores`` are the
    discriminator's logits on (photo, sigmoid(logits)); ``None`` skips the adversarial term.
    """

    def __init__(self, adversarial_weight: float = 0.1, dice_weight: float = 0.0):
        super().__init__()
        self.adversarial_weight = adversarial_weight
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor, fake_scores: Tensor | None = None) -> LossParts:
        bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
        loss = bce
        parts: LossParts = {"bce": bce}
        if self.dice_weight:
            dice = soft_dice(logits, target)
            loss = loss + self.dice_weight * (1 - dice)
            parts["soft_dice"] = dice
        if fake_scores is not None and self.adversarial_weight:
            adversarial = F.binary_cross_entropy_with_logits(fake_scores.float(), torch.ones_like(fake_scores, dtype=torch.float32))
            loss = loss + self.adversarial_weight * adversarial
            parts["adversarial"] = adversarial
        return {"loss": loss, **parts}


def discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """BCE of the discriminator: (photo, reference vessels) is real, (photo, generated) is fake."""
    real = F.binary_cross_entropy_with_logits(real_scores.float(), torch.ones_like(real_scores, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_scores.float(), torch.zeros_like(fake_scores, dtype=torch.float32))
    return 0.5 * (real + fake)


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "bce": BCELoss,
    "bce_dice": BCEDiceLoss,
    "fovea": FoveaLoss,
    "bce_adversarial": GeneratorAdversarialLoss,
}


def build_loss(name: str, **kwargs: object) -> nn.Module:
    """The loss ``name`` of :data:`LOSSES` with ``kwargs``; a clear error for an unknown name or argument."""
    if name not in LOSSES:
        raise FunduskitError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    try:
        return LOSSES[name](**kwargs)
    except TypeError as error:
        raise FunduskitError(f"loss {name!r}: {error}") from error
