"""``get_dmatrix``: a channel's CSV (label first) or LIBSVM files as one ``DMatrix``."""
from __future__ import annotations

import os
from typing import Any

__all__ = ["get_dmatrix"]


def _files(data_path: str) -> list[str]:
    if os.path.isfile(data_path):
        return [data_path]
    found = []
    for root, _, names in os.walk(data_path):
        found += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
    return sorted(found)


def get_dmatrix(data_path: str | None, content_type: str, csv_weights: int = 0, is_pipe: bool = False) -> Any:
    """The container's reader: None when the channel is missing or empty (as there).

    ``content_type`` is ``csv`` / ``text/csv`` (label in the first column; with ``csv_weights``
    the second column is the instance weight) or ``libsvm`` / ``text/libsvm``.
    """
    import numpy as np
    import xgboost as xgb

    from .encoder import libsvm_rows
    if is_pipe:
        raise ValueError("Pipe mode is a SageMaker input mode; local channels are files (File mode)")
    if not data_path or not os.path.exists(data_path):
        return None
    files = _files(data_path)
    if not files:
        return None
    kind = content_type.split(";")[0].strip().lower().replace("text/", "").replace("x-", "")
    if kind == "csv":
        data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
        if csv_weights:
            return xgb.DMatrix(data[:, 2:], label=data[:, 0], weight=data[:, 1])
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    if kind == "libsvm":
        text = "\n".join(open(f).read() for f in files)
        matrix, labels = libsvm_rows(text)
        return xgb.DMatrix(matrix, label=labels)
    raise ValueError(f"content type {content_type!r} is not supported: use csv or libsvm")
