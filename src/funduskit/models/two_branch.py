"""The two-branch network of the report's disc/cup segmentation and fovea localisation.

One class, :class:`TwoBranchSegmenter`, serves both tasks; they differ in the number of decoder
stages and in the head:

- ``disc_cup_segmenter``: decoder up to 1/4 of the input (160 x 160 at 640), one map, logits
  up-sampled to the input size -> (B, 1, S, S).
- ``fovea_localiser``: decoder up to 1/8 (80 x 80 at 640), three maps (confidence, x offset,
  y offset) on the cell grid -> (B, 3, S/8, S/8); decode with :func:`funduskit.models.decode_fovea`.

The input is one tensor (B, 4, S, S): channels 0-2 the preprocessed photo (per-channel
standardised, or ``(I - 127) / 128`` for the pretrained Lite encoders), channel 3 the vessel
probability map (``torch.cat([photo, vessels], dim=1)``), ignored by a network built without its
vessel branch (``vessel_encoder=None``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funduskit.core.errors import FunduskitError
from funduskit.models._base import FunduskitModel
from funduskit.models._registry import register_model
from funduskit.models.decoder import SkipDecoder
from funduskit.models.encoders import create_encoder, feature_index_by_reduction

__all__ = ["PHOTO_CHANNELS", "TwoBranchSegmenter", "disc_cup_segmenter", "fovea_localiser"]

PHOTO_CHANNELS = 3
BOTTLENECK_REDUCTION = 32  # timm's deepest feature map (20 x 20 at 640), see docs/decisions.md


class TwoBranchSegmenter(FunduskitModel):
    """Photo encoder + vessel encoder, deepest features concatenated, skip decoder, 1x1 head.

    Args:
        photo_encoder: timm name of the photo branch (3 channels); needs features at
            reductions 32, 16, ... down to ``output_reduction``.
        vessel_encoder: timm name of the vessel branch (1 channel); its reduction-32 feature is used.
            ``None``: no vessel branch, the photo alone (the input keeps its vessel channel, which
            is ignored; the ``real`` preset's crop networks, trained with ``data.vessel_input: none``).
        decoder_channels: output channels of each decoder stage; their number sets the output
            grid: ``output_reduction = 32 / 2**len(decoder_channels)``.
        out_channels: number of output maps.
        upsample_to_input: up-sample the logits to the input size (segmentation) or keep the
            decoder grid (fovea cells).
        pretrained: load timm's pretrained weights into both encoders (needs a network).
        photo_encoder_weights, vessel_encoder_weights: local state-dict files of the timm
            classifiers, loaded into the encoders (see :func:`create_encoder`).

    ``forward(x (B, 4, S, S))`` -> logits (B, out_channels, S, S) if ``upsample_to_input``, else
    (B, out_channels, S / output_reduction, S / output_reduction). ``predict`` gives sigmoids.
    """

    input_multiple = BOTTLENECK_REDUCTION
    input_description = "preprocessed RGB photo + vessel probability map"

    def __init__(
        self,
        *,
        photo_encoder: str = "efficientnet_b4",
        vessel_encoder: str | None = "efficientnet_b0",
        decoder_channels: Sequence[int] = (256, 128, 64),
        out_channels: int = 1,
        upsample_to_input: bool = True,
        pretrained: bool = False,
        photo_encoder_weights: str | Path | None = None,
        vessel_encoder_weights: str | Path | None = None,
    ):
        super().__init__()
        if not decoder_channels:
            raise FunduskitError("decoder_channels must name at least one decoder stage")
        self.in_channels = PHOTO_CHANNELS + 1
        self.upsample_to_input = upsample_to_input
        self.output_reduction = BOTTLENECK_REDUCTION // 2 ** len(decoder_channels)

        self.photo_encoder = create_encoder(
            photo_encoder, in_chans=PHOTO_CHANNELS, features_only=True, pretrained=pretrained, weights=photo_encoder_weights
        )
        skip_reductions = [BOTTLENECK_REDUCTION // 2**k for k in range(1, len(decoder_channels) + 1)]
        self._photo_indices = _feature_indices(photo_encoder, self.photo_encoder, [BOTTLENECK_REDUCTION, *skip_reductions])
        photo_channels = self.photo_encoder.feature_info.channels()
        bottleneck_channels = photo_channels[self._photo_indices[0]]
        self.vessel_encoder: nn.Module | None = None
        if vessel_encoder is not None:
            self.vessel_encoder = create_encoder(
                vessel_encoder, in_chans=1, features_only=True, pretrained=pretrained, weights=vessel_encoder_weights
            )
            (self._vessel_index,) = _feature_indices(vessel_encoder, self.vessel_encoder, [BOTTLENECK_REDUCTION])
            bottleneck_channels += self.vessel_encoder.feature_info.channels()[self._vessel_index]
        self.decoder = SkipDecoder(
            bottleneck_channels, [photo_channels[i] for i in self._photo_indices[1:]], list(decoder_channels)
        )
        self.head = nn.Conv2d(self.decoder.out_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        photo, vessels = x[:, :PHOTO_CHANNELS], x[:, PHOTO_CHANNELS:]
        photo_features = self.photo_encoder(photo)
        bottleneck, *skips = (photo_features[i] for i in self._photo_indices)
        if self.vessel_encoder is not None:
            bottleneck = torch.cat([bottleneck, self.vessel_encoder(vessels)[self._vessel_index]], dim=1)
        logits = self.head(self.decoder(bottleneck, skips))
        if self.upsample_to_input:
            # the 1x1 head commutes with bilinear up-sampling, so it runs at the decoder's size
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits


def _feature_indices(name: str, encoder: nn.Module, reductions: Sequence[int]) -> list[int]:
    """Feature-list indices of ``encoder`` at the given reductions; a clear error if one is missing."""
    available = feature_index_by_reduction(encoder)
    missing = [r for r in reductions if r not in available]
    if missing:
        raise FunduskitError(
            f"encoder {name!r} has feature maps at reductions {sorted(available)}, but this network needs "
            f"{list(reductions)} (missing {missing}); choose another encoder or fewer decoder stages"
        )
    return [available[r] for r in reductions]


@register_model
def disc_cup_segmenter(**kwargs: object) -> TwoBranchSegmenter:
    """Disc (or cup) segmenter: B4 photo + B0 vessel branch, decoder to S/4, (B, 1, S, S) logits."""
    return TwoBranchSegmenter(**{"decoder_channels": (256, 128, 64), "out_channels": 1, "upsample_to_input": True, **kwargs})


FOVEA_CONFIDENCE_PRIOR = 0.01


@register_model
def fovea_localiser(**kwargs: object) -> TwoBranchSegmenter:
    """Fovea localiser: same network, decoder to S/8, (B, 3, S/8, S/8) logits
    (confidence, x offset, y offset in the cell).

    The confidence bias starts at logit(0.01): one cell in thousands holds the fovea, so the
    first steps need not unlearn a 0.5 prior.
    """
    model = TwoBranchSegmenter(**{"decoder_channels": (256, 128), "out_channels": 3, "upsample_to_input": False, **kwargs})
    with torch.no_grad():
        model.head.bias[0] = math.log(FOVEA_CONFIDENCE_PRIOR / (1 - FOVEA_CONFIDENCE_PRIOR))
    return model
