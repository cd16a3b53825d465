"""Vessel segmentation GAN of Son, Park & Jung (J Digit Imaging 2019; arXiv 1706.09318, "V-GAN").

Follows the authors' published Keras code: the generator is a U-Net of double
[3x3 conv, batch norm, ReLU] blocks with widths n, 2n, 4n, 8n, 16n (n = 32), 2x2 max pooling,
nearest x2 up-sampling and concatenation skips, a 1x1 convolution to one map. The discriminator
that worked best in the paper (the "image GAN") takes the photo and a vessel map concatenated,
runs [stride-2 conv, conv] x 2 and [conv, conv] x 3 blocks with batch norm and ReLU, a max pool
after each of the first four blocks (64x down-sampling in all), global average pooling and one
dense unit. The "patch" variant (the paper's patch GAN 2) keeps the trunk and replaces the
pooling and dense unit by a 1x1 convolution, one logit per 64x64 patch.

Training (funduskit.training): loss = BCE(generator, truth) + 0.1 * adversarial BCE
(the paper's ratio gan:seg = 1:10), Adam lr 2e-4, beta1 0.5.

Differences from the Keras code: batch norm has a learned scale here (Keras used
``scale=False``), and both networks return logits instead of sigmoids.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from funduskit.core.errors import FunduskitError
from funduskit.models._base import FunduskitModel
from funduskit.models._registry import register_model

__all__ = ["UNetGenerator", "VesselDiscriminator", "vessel_discriminator", "vessel_generator"]


class ConvBlock(nn.Sequential):
    """Two [3x3 conv, batch norm, ReLU]; the first may have stride 2.

    (B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, first_stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=first_stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNetGenerator(FunduskitModel):
    """U-Net vessel segmenter (the GAN's generator).

    Args:
        in_channels: photo channels.
        base_width: channels of the first block, doubled at each level (paper: 32).
        depth: number of 2x down-sampling steps (paper: 4, widths 32 ... 512).
        out_channels: output maps.

    ``forward(x (B, in_channels, H, W))`` -> logits (B, out_channels, H, W); H and W multiples
    of ``2**depth``. Shapes at 640 with the defaults: encoder (32, 640), (64, 320), (128, 160),
    (256, 80), bottom (512, 40); the decoder mirrors them back to (32, 640).
    """

    input_description = "standardised RGB photo"

    def __init__(self, *, in_channels: int = 3, base_width: int = 32, depth: int = 4, out_channels: int = 1):
        super().__init__()
        if depth < 1:
            raise FunduskitError(f"vessel generator depth must be >= 1; got {depth}")
        self.in_channels = in_channels
        self.input_multiple = 2**depth
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.down_blocks = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottom = ConvBlock(widths[-2], widths[-1])
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_blocks = nn.ModuleList(
            ConvBlock(c_deep + c_skip, c_skip)
            for c_deep, c_skip in zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True)
        )
        self.head = nn.Conv2d(base_width, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        skips = []
        for block in self.down_blocks:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for block, skip in zip(self.up_blocks, reversed(skips), strict=True):
            x = block(torch.cat([self.upsample(x), skip], dim=1))
        return self.head(x)


class VesselDiscriminator(FunduskitModel):
    """The GAN's discriminator on (photo ++ vessel map).

    Args:
        in_channels: photo channels + vessel map (3 + 1).
        base_width: channels of the first block, doubled at each of the five blocks (paper: 32).
        output: ``"image"`` (one logit per image, the paper's best) or ``"patch"`` (a map of
            logits, one per 64 x 64 patch).

    ``forward(x (B, 4, H, W))`` -> logits (B,) for ``"image"``, (B, 1, H/64, W/64) for
    ``"patch"``; H and W multiples of 64.
    """

    input_multiple = 64
    input_description = "standardised RGB photo + vessel map"

    def __init__(self, *, in_channels: int = 4, base_width: int = 32, output: Literal["image", "patch"] = "image"):
        super().__init__()
        if output not in ("image", "patch"):
            raise FunduskitError(f"discriminator output must be 'image' or 'patch'; got {output!r}")
        self.in_channels = in_channels
        self.output = output
        widths = [base_width * 2**level for level in range(5)]
        first_strides = [2, 2, 1, 1, 1]
        layers: list[nn.Module] = []
        for level, (c_in, c_out, stride) in enumerate(zip([in_channels, *widths[:-1]], widths, first_strides, strict=True)):
            layers.append(ConvBlock(c_in, c_out, first_stride=stride))
            if level < 4:
                layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)
        if output == "image":
            self.head: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 1), nn.Flatten(0))
        else:
            self.head = nn.Conv2d(widths[-1], 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.head(self.trunk(x))


@register_model
def vessel_generator(**kwargs: object) -> UNetGenerator:
    """V-GAN generator: U-Net, width 32, depth 4, photo (3) -> vessel logits (1)."""
    return UNetGenerator(**kwargs)


@register_model
def vessel_discriminator(**kwargs: object) -> VesselDiscriminator:
    """V-GAN image discriminator: photo + vessel map (4) -> one real/fake logit per image."""
    return VesselDiscriminator(**kwargs)
