"""``rabit_run`` on one host: the training function runs once, as the master."""
from __future__ import annotations

from typing import Any, Callable


def rabit_run(exec_fun: Callable[..., Any], args: dict[str, Any], include_in_training: bool, hosts: list[str],
              current_host: str, first_port: int | None = None, second_port: int | None = None,
              max_connect_attempts: int | None = None, connect_retry_timeout: int = 3,
              update_rabit_args: bool = False) -> Any:
    """Distributed XGBoost needs several hosts; local training has one, which is the master."""
    if len(hosts) > 1:
        raise RuntimeError("distributed XGBoost training needs several hosts; local training runs on one")
    if not include_in_training:
        return None
    call_args = dict(args)
    if update_rabit_args:
        call_args["is_master"] = True
    return exec_fun(**call_args)
