"""Serving functions for the wine classifier (SageMaker scikit-learn serving contract).

model_fn loads the joblib model; output_fn answers JSON with the class and its probabilities.
input_fn and predict_fn are left to the container's defaults (CSV or JSON rows).
"""
import json
import os

import joblib

CLASSES = ["class_0", "class_1", "class_2"]


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return {"labels": model.predict(data).tolist(), "probabilities": model.predict_proba(data).tolist()}


def output_fn(prediction, accept):
    rows = [{"label": CLASSES[label], "probabilities": [round(p, 4) for p in probs]}
            for label, probs in zip(prediction["labels"], prediction["probabilities"])]
    return json.dumps({"predictions": rows}), "application/json"
