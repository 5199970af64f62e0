"""Train a breast cancer classifier with XGBoost: a script for SageMaker's XGBoost container.

Script mode, unchanged between SageMaker and SageBuild's local mode: hyperparameters arrive as
--name value, data from SM_CHANNEL_TRAIN and SM_CHANNEL_VALIDATION (CSV, label first), the
model goes to SM_MODEL_DIR as ``xgboost-model``. It prints "validation-auc: X" for the metric
definition. For serving it defines only model_fn: the container's defaults turn CSV, LIBSVM or
JSON bodies into a DMatrix and answer the Booster's predictions as JSON or CSV.
"""
import argparse
import glob
import os

import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score

MODEL_FILE = "xgboost-model"


def read_channel(path):
    files = sorted(glob.glob(os.path.join(path, "*.csv")))
    if not files:
        raise FileNotFoundError(f"no CSV files in {path}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, MODEL_FILE))
    return booster


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_round", type=int, default=100)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--eta", type=float, default=0.2)
    parser.add_argument("--objective", default="binary:logistic")
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args = parser.parse_args()

    x_train, y_train = read_channel(args.train)
    x_val, y_val = read_channel(args.validation)
    train, validation = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_val, label=y_val)
    params = {"max_depth": args.max_depth, "eta": args.eta, "objective": args.objective, "eval_metric": "auc",
              "nthread": 1}
    booster = xgb.train(params, train, num_boost_round=args.num_round, evals=[(validation, "validation")],
                        verbose_eval=25)
    auc = roc_auc_score(y_val, booster.predict(validation))
    print(f"validation-auc: {auc:.4f}")
    booster.save_model(os.path.join(args.model_dir, MODEL_FILE))


if __name__ == "__main__":
    main()
