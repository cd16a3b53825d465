"""The report's networks, built by name with :func:`create_model`.

========================  ==================================================  =========================
name                      input                                               ``forward`` returns
========================  ==================================================  =========================
``disc_cup_segmenter``    (B, 4, S, S) standardised photo ++ vessel map       logits (B, 1, S, S)
``fovea_localiser``       (B, 4, S, S) standardised photo ++ vessel map       logits (B, 3, S/8, S/8)
``vessel_generator``      (B, 3, S, S) standardised photo                     logits (B, 1, S, S)
``vessel_discriminator``  (B, 4, S, S) photo ++ vessel map                    logits (B,)
``glaucoma_classifier``   (B, 3, S, S) photo (/255 or zero-local-mean)        logits (B,)
========================  ==================================================  =========================

Every model's ``predict(x)`` returns the sigmoid probabilities under ``torch.inference_mode()``
and checks the input shape first. See ``docs/networks.md``.
"""

from __future__ import annotations

from funduskit.models._base import FunduskitModel, InputShapeError
from funduskit.models._registry import UnknownModelError, create_model, list_models, model_class, register_model
from funduskit.models.encoders import create_encoder
from funduskit.models.fovea import decode_fovea, encode_fovea_target
from funduskit.models.glaucoma import FINDINGS, GlaucomaClassifier
from funduskit.models.two_branch import TwoBranchSegmenter
from funduskit.models.vessel_gan import UNetGenerator, VesselDiscriminator

__all__ = [
    "FINDINGS",
    "FunduskitModel",
    "GlaucomaClassifier",
    "InputShapeError",
    "TwoBranchSegmenter",
    "UNetGenerator",
    "UnknownModelError",
    "VesselDiscriminator",
    "create_encoder",
    "create_model",
    "decode_fovea",
    "encode_fovea_target",
    "list_models",
    "model_class",
    "register_model",
]
