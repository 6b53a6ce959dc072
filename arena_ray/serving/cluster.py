"""Connect to a Ray cluster, or start the embedded local one; and always leave it as we found it."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import ray

from arena_ray.settings.cluster import RayConfig

log = logging.getLogger(__name__)


def target_address(ray_cfg: RayConfig) -> str | None:
    """ray.address from config wins; else $RAY_ADDRESS (set by `ray job submit`); else None (start one)."""
    return ray_cfg.address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def ray_session(ray_cfg: RayConfig) -> Iterator[bool]:
    """Yields True when this process started (and so owns) the cluster. Inside a running session (a test's
    cluster, an outer workflow) it joins that one and leaves it running."""
    if ray.is_initialized():
        yield False
        return
    address = target_address(ray_cfg)
    if address:
        ray.init(address=address, namespace=ray_cfg.namespace, logging_level=logging.WARNING)
        owned = False
    else:
        # vLLM engines live in child processes of their replicas; when a replica dies hard they would be
        # orphaned and keep spinning on the CPU. The raylet as subreaper kills them.
        os.environ.setdefault("RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper", "true")
        # address="local": a cluster of our own, even where another one runs on this machine (Ray would
        # otherwise attach to it, as `ray.init()` with no address does).
        ray.init(address="local", num_cpus=ray_cfg.num_cpus, namespace=ray_cfg.namespace,
                 include_dashboard=ray_cfg.include_dashboard, dashboard_host=ray_cfg.dashboard_host,
                 logging_level=logging.WARNING)
        owned = True
    try:
        yield owned
    finally:
        ray.shutdown()
