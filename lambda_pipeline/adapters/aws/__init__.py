"""AWS adapters for the ports (boto3). Each takes ``boto3_client=None, boto3_session=None`` and
builds its default client in ``__init__``, never at import time."""
from .dynamodb_ledger import DynamoDBLedger
from .sagemaker import SageMakerHosting, SageMakerTraining
from .sns_notifier import SnsNotifier

__all__ = ["SnsNotifier", "SageMakerTraining", "SageMakerHosting", "DynamoDBLedger"]
