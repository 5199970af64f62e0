"""Write the Wisconsin breast cancer data set (shipped with scikit-learn, no download) as CSVs.

Label first (as scikit-learn codes it: 0 malignant, 1 benign), then the 30 features, no header:
the layout SageMaker's XGBoost container reads for text/csv training data.
"""
import argparse
import os

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=args.seed, stratify=y)
    for channel, xs, ys in (("train", x_train, y_train), ("validation", x_val, y_val)):
        folder = os.path.join(args.out, channel)
        os.makedirs(folder, exist_ok=True)
        np.savetxt(os.path.join(folder, f"{channel}.csv"), np.column_stack([ys, xs]), delimiter=",", fmt="%.6g")
        print(f"wrote {len(ys)} rows to {folder}")


if __name__ == "__main__":
    main()
