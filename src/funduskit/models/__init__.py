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

import lazy_loader

# Submodules are imported on first use (SPEC 1 lazy loading): inference code that needs only
# `decode_fovea` or `maps` does not load timm and torchvision.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_base": ["FunduskitModel", "InputShapeError"],
        "_registry": ["UnknownModelError", "create_model", "list_models", "model_class", "register_model"],
        "encoders": ["create_encoder"],
        "fovea": ["decode_fovea", "encode_fovea_target"],
        "glaucoma": ["FINDINGS", "GlaucomaClassifier"],
        "two_branch": ["TwoBranchSegmenter"],
        "vessel_gan": ["UNetGenerator", "VesselDiscriminator"],
    },
)
