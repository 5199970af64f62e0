"""``sagemaker_containers`` as far as XGBoost scripts use it: see ``container_libs``."""
