"""Adapters for the ports in :mod:`lambda_pipeline.ports`: ``local`` and ``aws``."""
