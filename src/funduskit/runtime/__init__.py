"""Where and how fast networks compute, for training and prediction alike: device, precision and
threads (:mod:`~funduskit.runtime.device`), inference rewrites (:mod:`~funduskit.runtime.optimise`)
and the allocator setting of the ONNX Runtime backend (:mod:`~funduskit.runtime.memory`)."""
