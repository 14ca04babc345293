"""Production monitoring: the training-time baseline, SageMaker-format data capture and the drift monitor.

This package never imports :mod:`pipeline.local` or :mod:`pipeline.cloud`: the local runtime uses its
capture writer, and the ``monitor`` command hands it settings read from the deploy configuration.
"""
