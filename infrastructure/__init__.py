"""Where SageBuild runs: ``local`` (the embedded engine) and ``aws`` (CloudFormation)."""
