"""Serving functions a framework's SageMaker container uses when the script does not define them.

The model server takes ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` from the
user's script and falls back to its framework's defaults (``SAGEBUILD_FRAMEWORK``): scikit-learn's
live in ``model_server.py``; XGBoost's are here, as SageMaker's XGBoost container behaves in
script mode (a Booster from ``xgboost-model`` or another saved model; CSV, LIBSVM and JSON bodies
to a ``DMatrix``; predictions as JSON or CSV). ``custom`` has no model loader: the script defines
``model_fn``; the others fall back to plain JSON and CSV without numpy.
"""
from __future__ import annotations

import json
import os
import pickle
from typing import Any, Callable

__all__ = ["UnsupportedMediaType", "defaults_for", "xgboost_model_fn", "xgboost_input_fn", "xgboost_predict_fn",
           "xgboost_output_fn"]

_XGB_MODEL = "xgboost-model"  # the name SageMaker's XGBoost container saves and loads
_CSV = "text/csv"
_JSON = "application/json"


class UnsupportedMediaType(ValueError):
    """The request's Content-Type (415) or Accept (406) is not one the handlers know."""


def _media(content_type: str | None) -> str:
    return (content_type or "").split(",")[0].split(";")[0].strip().lower()


# -- XGBoost -------------------------------------------------------------------------------
def xgboost_model_fn(model_dir: str) -> Any:
    """``xgboost-model`` (or the one model file there), as saved by ``Booster.save_model`` or pickled."""
    import xgboost as xgb
    files = sorted(f for f in os.listdir(model_dir) if os.path.isfile(os.path.join(model_dir, f)))
    if _XGB_MODEL in files:
        name = _XGB_MODEL
    elif len(files) == 1:
        name = files[0]
    else:
        raise FileNotFoundError(f"no {_XGB_MODEL!r} in {model_dir} (found {files or 'nothing'}); save the model "
                                f"there with Booster.save_model, or define model_fn to load it")
    path = os.path.join(model_dir, name)
    with open(path, "rb") as fh:
        pickled = fh.read(1) == b"\x80"  # pickle protocol 2 and later; the container tries both too
    if not pickled:
        booster = xgb.Booster()
        booster.load_model(path)
        return booster
    with open(path, "rb") as fh:
        model = pickle.load(fh)  # noqa: S301 - the model the user's own training job wrote
    return model.get_booster() if hasattr(model, "get_booster") else model


def xgboost_input_fn(body: bytes, content_type: str) -> Any:
    """CSV rows (no label), LIBSVM lines, or JSON rows to a ``DMatrix`` (the container's encoder)."""
    from .container_libs.sagemaker_xgboost_container import encoder
    if _media(content_type) not in encoder.SUPPORTED:
        raise UnsupportedMediaType(f"content type {content_type!r} is not supported by the XGBoost defaults: use "
                                   "text/csv, text/libsvm or application/json (or define input_fn)")
    return encoder.decode(body, content_type)


def xgboost_predict_fn(data: Any, model: Any) -> Any:
    import xgboost as xgb
    if isinstance(model, xgb.Booster):
        return model.predict(data, validate_features=False)
    return model.predict(data)


def xgboost_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """JSON (a list) or CSV (a row per prediction), as the container's encoder writes them."""
    accept = _media(accept) or _JSON
    values = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    if accept in (_JSON, "*/*"):
        return json.dumps(values).encode(), _JSON
    if accept == _CSV:
        rows = values if values and isinstance(values[0], list) else [[v] for v in values]
        return ("\n".join(",".join(str(x) for x in row) for row in rows) + "\n").encode(), _CSV
    raise UnsupportedMediaType(f"accept type {accept!r} is not supported: use application/json or text/csv")


# -- custom --------------------------------------------------------------------------------
def custom_model_fn(model_dir: str) -> Any:
    raise FileNotFoundError("framework 'custom' has no default model loader: define model_fn(model_dir) in the "
                            "inference script")


def custom_input_fn(body: bytes, content_type: str) -> Any:
    ctype = _media(content_type)
    if ctype == _JSON:
        return json.loads(body.decode("utf-8"))
    if ctype == _CSV:
        return [[float(x) for x in line.split(",")] for line in body.decode("utf-8").splitlines() if line.strip()]
    raise UnsupportedMediaType(f"content type {content_type!r} is not supported by the default input_fn: use "
                               "text/csv or application/json (or define input_fn)")


def custom_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


custom_output_fn = xgboost_output_fn  # JSON or CSV of a list; needs no numpy


def defaults_for(framework: str | None) -> dict[str, Callable[..., Any]] | None:
    """The framework's default serving functions; None means scikit-learn's (the model server's own)."""
    if framework == "xgboost":
        return {"model_fn": xgboost_model_fn, "input_fn": xgboost_input_fn, "predict_fn": xgboost_predict_fn,
                "output_fn": xgboost_output_fn}
    if framework == "custom":
        return {"model_fn": custom_model_fn, "input_fn": custom_input_fn, "predict_fn": custom_predict_fn,
                "output_fn": custom_output_fn}
    return None
