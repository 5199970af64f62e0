"""``sagemaker_xgboost_container`` as far as published scripts use it: see ``container_libs``."""
