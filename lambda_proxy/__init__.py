"""API Gateway (REST, Lambda proxy integration) -> SageMaker InvokeEndpoint.

Runs on the AWS Lambda Python runtime with nothing but the standard library and the runtime's boto3.
The entry point is :func:`lambda_proxy.handler.handler`.
"""
