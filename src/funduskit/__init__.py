"""funduskit: glaucoma assessment from colour fundus photographs.

Reproduces the VUNO team's REFUGE2 system (glaucoma classification, optic disc and cup
segmentation, fovea localisation, GAN-trained vessel segmentation) as maintained software.
"""

__version__ = "0.2.0"
