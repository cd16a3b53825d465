"""The official REFUGE evaluation: metric definitions (:mod:`~funduskit.scoring.metrics`), the
submission format (:mod:`~funduskit.scoring.submission`) and ``funduskit evaluate``
(:mod:`~funduskit.scoring.evaluate`). Never imports torch."""
