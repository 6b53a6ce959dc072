"""Where the work runs: the Ray cluster to start or attach to, and the Serve HTTP proxy."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from arena_ray.settings.base import Strict


class RayConfig(Strict):
    address: Optional[str] = None
    """Cluster to attach to; null: $RAY_ADDRESS if set (ray job submit), else start a local cluster."""
    num_cpus: int = Field(8, ge=1)
    """Logical CPUs of a local cluster; more than the cores, since serving replicas mostly wait on their engine."""
    namespace: str = "arena_ray"
    """Ray namespace of the job's named actors (coordinator, weight stores)."""
    dashboard_host: str = "127.0.0.1"
    """Interface the local cluster's dashboard binds to."""
    include_dashboard: bool = True
    """Start the dashboard with a local cluster."""


class ServeConfig(Strict):
    http_host: str = "127.0.0.1"
    """Interface Serve's HTTP proxy binds to (0.0.0.0 only behind your own network policy)."""
    http_port: int = Field(8000, ge=1, le=65535)
    """Port of Serve's HTTP proxy."""
    keep_alive: bool = False
    """Leave the model applications running when the job ends (a long-lived RayService); a later job with the
    same model settings reuses them."""
    deploy_timeout_s: float = Field(900.0, gt=0)
    """How long all model applications may take to start before the job fails."""
    reuse_between_stages: bool = True
    """Keep a model served between the stages of a workflow while a later stage still needs it (a flywheel's
    judge and competitors); false frees the serving resources after every stage."""
