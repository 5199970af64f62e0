"""Request bodies to a ``DMatrix``, as the XGBoost container's ``encoder`` module decodes them."""
from __future__ import annotations

import json
from typing import Any, Callable

__all__ = ["csv_to_dmatrix", "libsvm_to_dmatrix", "json_to_dmatrix", "decode", "SUPPORTED"]

SUPPORTED = ("text/csv", "text/libsvm", "text/x-libsvm", "application/json")


def _text(data: Any) -> str:
    return data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else str(data)


def csv_to_dmatrix(string_like: Any, dtype: Any = None) -> Any:
    """CSV rows without a label; empty fields are missing values."""
    import numpy as np
    import xgboost as xgb
    rows = [line for line in _text(string_like).splitlines() if line.strip()]
    array = np.array([[float(x) if x.strip() else np.nan for x in line.split(",")] for line in rows],
                     dtype=dtype or float)
    return xgb.DMatrix(array)


def libsvm_rows(text: str) -> tuple[Any, list[float]]:
    """A CSR matrix of ``index:value`` lines and their labels (0 where a line has none)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    data: list[float] = []
    indices: list[int] = []
    indptr, labels, width = [0], [], 0
    for line in text.splitlines():
        tokens = line.split("#")[0].split()
        if not tokens:
            continue
        label = 0.0
        if ":" not in tokens[0]:
            label, tokens = float(tokens[0]), tokens[1:]
        for token in tokens:
            index, _, value = token.partition(":")
            indices.append(int(index))
            data.append(float(value))
            width = max(width, int(index) + 1)
        indptr.append(len(data))
        labels.append(label)
    matrix = csr_matrix((np.array(data), np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                        shape=(len(labels), width))
    return matrix, labels


def libsvm_to_dmatrix(string_like: Any) -> Any:
    import xgboost as xgb
    matrix, _ = libsvm_rows(_text(string_like))
    return xgb.DMatrix(matrix)


def json_to_dmatrix(string_like: Any) -> Any:
    """A list of rows, one row, ``{"instances": [...]}`` or rows given as ``{"features": [...]}``."""
    import numpy as np
    import xgboost as xgb
    data = json.loads(_text(string_like))
    if isinstance(data, dict):
        data = data.get("instances", data.get("features"))
        if data is None:
            raise ValueError('a JSON body is a list of rows, or {"instances": [...]}')
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = [row.get("features") for row in data]
    array = np.array(data, dtype=float)
    return xgb.DMatrix(array.reshape(1, -1) if array.ndim == 1 else array)


_DECODERS: dict[str, Callable[[Any], Any]] = {"text/csv": csv_to_dmatrix, "text/libsvm": libsvm_to_dmatrix, "text/x-libsvm": libsvm_to_dmatrix,
             "application/json": json_to_dmatrix}


def decode(obj: Any, content_type: str) -> Any:
    """The body as a ``DMatrix``. Raises ValueError for a content type the container does not take."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in _DECODERS:
        raise ValueError(f"content type {content_type!r} is not supported: use {', '.join(SUPPORTED)}")
    return _DECODERS[media](obj)
