"""Batch scoring: SageMaker Batch Transform in AWS and a local runner with the same semantics.

``python -m pipeline batch INPUT OUTPUT`` (see :mod:`pipeline.commands.batch` and docs/batch.md).
"""
