"""SageBuild: continuous delivery for ML models. The CLI lives in :mod:`sagebuild.cli`."""
__all__: list[str] = []
