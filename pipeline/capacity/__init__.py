"""Capacity planning: from the measured per-instance throughput (``bench/results/``) to an instance
count, the autoscaling target, the API Gateway throttle, Lambda concurrency and a monthly cost.

``measurement`` reads the benchmark, ``instances`` the vCPU table (``config/instance-types.toml``),
``plan`` does the arithmetic and renders it. This package reads the cloud configuration and prices
(``pipeline.cloud``); nothing in ``pipeline.cloud`` imports it.
"""
