"""Train a wine classifier: a SageMaker script-mode script, unchanged between SageMaker and local.

Reads CSVs (label in the first column) from the train and validation channels, writes the
model with joblib to SM_MODEL_DIR, prints "validation accuracy: X" for the metric definition.
On a bad hyperparameter it writes /opt/ml/output/failure, as SageMaker expects.
"""
import argparse
import glob
import os
import sys

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score


def read_channel(path):
    files = sorted(glob.glob(os.path.join(path, "*.csv")))
    if not files:
        raise FileNotFoundError(f"no CSV files in {path}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0].astype(int)


def fail(message):
    failure = os.path.join(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"), "failure")
    with open(failure, "w") as fh:
        fh.write(message)
    print(message, file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args = parser.parse_args()
    if args.n_estimators < 1:
        fail(f"n-estimators must be at least 1, got {args.n_estimators}")

    x_train, y_train = read_channel(args.train)
    x_val, y_val = read_channel(args.validation)
    print(f"training on {len(y_train)} rows, validating on {len(y_val)}")
    model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth,
                                   random_state=args.random_state, n_jobs=1)
    model.fit(x_train, y_train)
    accuracy = accuracy_score(y_val, model.predict(x_val))
    print(f"validation accuracy: {accuracy:.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))


if __name__ == "__main__":
    main()
