"""The SageMaker serving application: HTTP layer, validation and the scoring engine interface."""
