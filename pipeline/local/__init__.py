"""The local cloud: the AWS request path (gateway → Lambda proxy → InvokeEndpoint → container) on loopback.

Two small services stand in for AWS: :mod:`pipeline.local.gateway` (API Gateway with keys and a usage
plan, running the real ``lambda_proxy`` handler in worker processes) and :mod:`pipeline.local.runtime`
(SageMaker's InvokeEndpoint in front of the real serving container). :mod:`pipeline.local.stack`
starts and stops them; ``python -m pipeline local ...`` is the command line.
"""
