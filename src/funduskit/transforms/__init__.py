"""What happens to a photograph before a network sees it: the report's preprocessings and
letterbox geometry (:mod:`~funduskit.transforms.preprocess`) and the training augmentations
(:mod:`~funduskit.transforms.augment`, albumentations). No torch."""
