"""The parts of SageMaker's container libraries that published training and inference scripts import.

SageMaker's XGBoost container ships ``sagemaker_xgboost_container`` and ``sagemaker_containers``;
neither is on PyPI. Scripts written for it import ``data_utils.get_dmatrix``, ``encoder`` and
``distributed`` (and ``sagemaker_containers.entry_point``), so a local xgboost environment puts
this folder on ``PYTHONPATH`` (after the code folder: a script's own modules win). Single host
only, as local training is.
"""
