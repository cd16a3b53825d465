"""The report's decoder: repeated [x2 up-sampling, concatenation with the same-size photo feature,
depthwise-separable convolution, swish], no batch normalisation.

Shapes at the paper size (640 x 640 input, EfficientNet-B4 photo branch, B0 vessel branch,
``decoder_channels=(256, 128, 64)``)::

    bottleneck  photo r32 (448, 20, 20) ++ vessel r32 (320, 20, 20)  -> (768, 20, 20)
    stage 1     up -> (768, 40, 40)  ++ photo r16 (160, 40, 40)      -> sepconv -> (256, 40, 40)
    stage 2     up -> (256, 80, 80)  ++ photo r8  (56, 80, 80)       -> sepconv -> (128, 80, 80)
    stage 3     up -> (128, 160, 160) ++ photo r4 (32, 160, 160)     -> sepconv -> (64, 160, 160)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["SeparableConvSwish", "SkipDecoder"]


class SeparableConvSwish(nn.Sequential):
    """Depthwise 3x3 convolution, pointwise 1x1 convolution (with bias), swish (SiLU).

    (B, in_channels, H, W) -> (B, out_channels, H, W); like Keras ``SeparableConv2D`` + swish.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
            nn.SiLU(inplace=True),
        )


class DecoderStage(nn.Module):
    """x2 nearest up-sampling, concatenation with a skip feature, :class:`SeparableConvSwish`.

    (B, C, H, W) and skip (B, C_skip, 2H, 2W) -> (B, out_channels, 2H, 2W).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = SeparableConvSwish(in_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.upsample(x), skip], dim=1))


class SkipDecoder(nn.Module):
    """A chain of :class:`DecoderStage`, each doubling the resolution.

    Args:
        bottleneck_channels: channels of the deepest (concatenated) feature map.
        skip_channels: channels of the skip features, deepest first (one per stage).
        decoder_channels: output channels of each stage (same length as ``skip_channels``).

    ``forward(bottleneck (B, C0, h, w), skips [(B, C1, 2h, 2w), (B, C2, 4h, 4w), ...])``
    -> (B, decoder_channels[-1], h * 2**n, w * 2**n).
    """

    def __init__(self, bottleneck_channels: int, skip_channels: Sequence[int], decoder_channels: Sequence[int]):
        super().__init__()
        if len(skip_channels) != len(decoder_channels):
            raise ValueError(f"{len(skip_channels)} skip features for {len(decoder_channels)} decoder stages")
        in_channels = [bottleneck_channels, *decoder_channels[:-1]]
        self.stages = nn.ModuleList(
            DecoderStage(c_in, c_skip, c_out)
            for c_in, c_skip, c_out in zip(in_channels, skip_channels, decoder_channels, strict=True)
        )
        self.out_channels = decoder_channels[-1] if decoder_channels else bottleneck_channels

    def forward(self, bottleneck: Tensor, skips: Sequence[Tensor]) -> Tensor:
        x = bottleneck
        for stage, skip in zip(self.stages, skips, strict=True):
            x = stage(x, skip)
        return x
