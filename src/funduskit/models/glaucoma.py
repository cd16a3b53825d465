"""Glaucoma classifier: an EfficientNet whose output is 15 finding maps, pooled, concatenated,
and one fully connected layer (the report's section 2.2).

Shapes at the paper size (1024 x 1024, EfficientNet-B0, ``pool_size=4``)::

    photo (B, 3, 1024, 1024) -> backbone features (B, 1280, 32, 32)
      -> 1x1 conv + sigmoid: finding maps (B, 15, 32, 32)
      -> adaptive average pool (B, 15, 4, 4) -> flatten (B, 240) -> linear -> logit (B,)

In the report only the last layer is trained, on a findings network trained elsewhere:
``load_backbone(path)`` + ``freeze_backbone()`` (or ``frozen_backbone=True``) do that here;
end-to-end training is the default.
"""

from __future__ import annotations

from pathlib import Path

import timm.models
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funduskit.core.errors import DataError
from funduskit.models._base import FunduskitModel
from funduskit.models._registry import register_model
from funduskit.models.encoders import create_encoder
from funduskit.models.pretrained import resolve_weights

__all__ = ["FINDINGS", "GlaucomaClassifier", "glaucoma_classifier"]

FINDINGS: tuple[str, ...] = (
    "hemorrhage",
    "hard exudate",
    "cotton wool patch",
    "drusen",
    "retinal pigmentary change",
    "vascular abnormality",
    "membrane",
    "fluid accumulation",
    "chorioretinal atrophy",
    "choroidal lesion",
    "myelinated nerve fiber",
    "retinal nerve fiber layer defect",
    "glaucomatous disc change",
    "non-glaucomatous disc change",
    "macular hole",
)


class GlaucomaClassifier(FunduskitModel):
    """EfficientNet backbone -> 15 sigmoid finding maps -> pooled grid -> one linear unit.

    Args:
        backbone: timm model name (its ``forward_features`` output is used).
        in_channels: photo channels.
        pool_size: finding maps are average-pooled to ``pool_size x pool_size`` before being
            flattened and concatenated (1 = one score per finding).
        pretrained: timm's pretrained weights for the backbone (needs a network).
        backbone_weights: a state-dict file loaded with :meth:`load_backbone`.
        frozen_backbone: call :meth:`freeze_backbone` (train only the last layer).

    ``forward(x (B, 3, S, S))`` -> logits (B,); ``predict`` -> probabilities (B,);
    ``finding_maps(x)`` -> (B, 15, S/32, S/32) in [0, 1].
    """

    input_multiple = 32
    input_description = "RGB photo, /255 or zero-local-mean"

    def __init__(
        self,
        *,
        backbone: str = "efficientnet_b0",
        in_channels: int = 3,
        pool_size: int = 4,
        pretrained: bool = False,
        backbone_weights: str | Path | None = None,
        frozen_backbone: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.backbone_name = backbone
        self.backbone = create_encoder(backbone, in_chans=in_channels, pretrained=pretrained, num_classes=0, global_pool="")
        self.findings = nn.Conv2d(self.backbone.num_features, len(FINDINGS), kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc = nn.Linear(len(FINDINGS) * pool_size**2, 1)
        self.backbone_frozen = False
        if backbone_weights is not None:
            self.load_backbone(backbone_weights)
        if frozen_backbone:
            self.freeze_backbone()

    def finding_maps(self, x: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, 15, S/32, S/32) finding activations in [0, 1], in ``FINDINGS`` order."""
        return torch.sigmoid(self.findings(self.backbone.forward_features(x)))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.fc(self.pooled(self.finding_maps(x)).flatten(1)).squeeze(1)

    def pooled(self, maps: Tensor) -> Tensor:
        """(B, 15, h, w) -> (B, 15, P, P) mean pooling. When P divides h and w this is a plain
        average pooling with a fixed kernel (the same numbers as the adaptive one), which ONNX
        export can write even where the encoder's TF-style padding hides the shapes from it."""
        size = self.pool.output_size
        side = size if isinstance(size, int) else size[0]
        height, width = int(maps.shape[-2]), int(maps.shape[-1])
        if height % side == 0 and width % side == 0:
            return F.avg_pool2d(maps, kernel_size=(height // side, width // side))
        return self.pool(maps)

    def freeze_backbone(self) -> None:
        """Train only the last linear layer: every other parameter gets ``requires_grad=False``
        and the backbone's batch-norm statistics and dropout stay in eval mode, also after
        ``model.train()``."""
        self.backbone_frozen = True
        for module in (self.backbone, self.findings):
            module.requires_grad_(False)
        self.train(self.training)

    def unfreeze_backbone(self) -> None:
        """Undo :meth:`freeze_backbone` (end-to-end training)."""
        self.backbone_frozen = False
        self.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> GlaucomaClassifier:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
            self.findings.eval()
        return self

    def load_backbone(self, path: str | Path) -> list[str]:
        """Load the frozen part from a state-dict file; the last linear layer is left as it is.

        Accepted files:

        - a funduskit classifier checkpoint (keys ``backbone.*``, ``findings.*``, optionally
          ``fc.*`` which is ignored; a ``{"state_dict"|"model": ...}`` wrapper is fine);
        - a timm classifier checkpoint of the backbone architecture (its head is dropped; the
          finding layer then stays as it is), or the name of installed ImageNet weights
          (``lite0``, ``lite1``, ``lite2``: :mod:`funduskit.models.pretrained`).

        Returns:
            the parts loaded: ``["backbone", "findings"]`` or ``["backbone"]``.

        Raises:
            DataError: the file is missing, unreadable, or does not fit.
        """
        path = resolve_weights(path)  # a file, or an installed registry name such as "lite0"
        if not path.is_file():
            raise DataError(path, "backbone weights file not found")
        try:
            state = timm.models.load_state_dict(str(path))
        except Exception as error:  # noqa: BLE001 - torch.load / safetensors raise many types
            raise DataError(path, f"is not a readable state-dict file ({type(error).__name__}: {error})") from error
        if not any(key.startswith("backbone.") for key in state):
            loaded = create_encoder(
                self.backbone_name, in_chans=self.in_channels, weights=path, num_classes=0, global_pool=""
            )
            self.backbone.load_state_dict(loaded.state_dict())
            return ["backbone"]
        parts = ["backbone", "findings"] if any(key.startswith("findings.") for key in state) else ["backbone"]
        for part in parts:
            prefix = f"{part}."
            part_state = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            try:
                getattr(self, part).load_state_dict(part_state)
            except RuntimeError as error:
                raise DataError(
                    path,
                    f"its {part} weights do not fit a {self.backbone_name!r} glaucoma classifier: "
                    f"{' '.join(str(error).split())[:400]}",
                    fix="build the classifier with the backbone the checkpoint was trained with",
                ) from error
        return parts


@register_model
def glaucoma_classifier(**kwargs: object) -> GlaucomaClassifier:
    """Glaucoma classifier: EfficientNet-B0, 15 finding maps pooled to 4x4, one linear unit."""
    return GlaucomaClassifier(**kwargs)
