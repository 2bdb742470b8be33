"""Training side module: data, self-supervised synthesis, losses, trainer, evaluation, manifest.

Nothing here runs in the app; it is how the weights in ``weights/`` were made and
measured. Entry points: ``python -m models.training.train``, ``…evaluate`` and
``…manifest``.
"""
