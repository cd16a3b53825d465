"""From photographs to answers: ensembles, post-processing, the predictor and its outputs.

Modules, in pipeline order (``docs/prediction.md`` describes the whole):

- :mod:`~funduskit.inference.model_store`: the run directories (or ``models.yaml``) in ``--models``
  and ``thresholds.json``.
- :mod:`~funduskit.inference.predictor`: :class:`Predictor`, every task's ensemble on a batch.
- :mod:`~funduskit.inference.ensemble`: combining members (mean maps, mean points, spread).
- :mod:`~funduskit.inference.postprocess`: threshold, largest blob, holes, REFUGE mask, measures.
- :mod:`~funduskit.inference.glaucoma_combiner`: the classifiers' probability with the measured vCDR.
- :mod:`~funduskit.inference.onnx_backend`: networks exported by ``funduskit export`` on ONNX Runtime.
- :mod:`~funduskit.inference.results`: per-image records, the result tables, the output folder's names.
- :mod:`~funduskit.inference.report`: the HTML report with overlays.
- :mod:`~funduskit.inference.pipeline`: ``funduskit predict`` (streaming, restarts, outputs).
- :mod:`~funduskit.inference.tuning`: ``funduskit tune`` (thresholds and the glaucoma combiner on
  validation predictions).

Submodules are imported on use, so ``import funduskit.inference`` does not load torch.
"""
