"""Photographs and their labels on disk: image reading (:mod:`~funduskit.data.io`), the
:class:`~funduskit.data.sample.Sample` record, and the readers of every public data set layout
(:mod:`funduskit.data.datasets`). No torch."""
