"""``entry_point._wait_hostname_resolution``: one local host resolves itself at once."""
from __future__ import annotations


def _wait_hostname_resolution() -> None:
    """On SageMaker it waits until every host of the job resolves; locally there is one host."""
