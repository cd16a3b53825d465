"""The run directory, the one format training writes and prediction reads: its file names
(:mod:`~funduskit.runs.layout`), checkpoints (:mod:`~funduskit.runs.checkpoint`) and networks
rebuilt from them (:mod:`~funduskit.runs.networks`)."""
