"""Jobs built from the stages: ``funduskit demo`` (:mod:`~funduskit.tools.demo`), ONNX export
(:mod:`~funduskit.tools.export`) and the inference benchmark (:mod:`funduskit.tools.bench`)."""
