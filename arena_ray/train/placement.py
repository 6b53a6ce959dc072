"""Where training processes run: CPU processes that cannot see a GPU, and a clear error, before anything waits
in Ray's placement, when a setting asks for more GPUs or CPUs than the cluster has or can grow to.

Ray no longer hides the GPUs from a process that reserved none (RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO, Ray
issue 54868): a CPU training worker on a GPU host then sees CUDA, and torch's gloo barrier, called with
`device_ids=[rank]` by accelerate, puts its tensor on `cuda:<rank>` ("invalid device ordinal" on a host with
fewer GPUs than workers). And a GPU setting on a cluster without GPUs waits forever for placement; it fails
at start here instead, unless an autoscaler may still add the nodes (then it warns and waits).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Mapping, NamedTuple, Optional

from arena_ray.errors import ConfigError

log = logging.getLogger(__name__)

CLUSTER_RESOURCES = "ray.cluster_resources()"


def cpu_worker_env() -> dict[str, str]:
    """Environment of a process that must run on CPU on any host: the runtime_env env_vars of its actor (set
    before the process imports torch, which reads CUDA_VISIBLE_DEVICES once)."""
    return {
        "CUDA_VISIBLE_DEVICES": "",                 # torch sees no GPU: CPU device, gloo barriers on CPU
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1",  # and Ray hides its own accelerators from it again
        "DS_ACCELERATOR": "cpu",                    # DeepSpeed's accelerator, whatever else is installed
    }


def require(capacity: Mapping[str, float], needs: Mapping[str, float], setting: str,
            source: str = CLUSTER_RESOURCES) -> None:
    """Raise a ConfigError naming `setting` when the cluster can never hold `needs` (e.g. {"GPU": 2}) at once."""
    short = [f"{need:g} {name}s but the Ray cluster has {capacity.get(name, 0):g} ({source})"
             for name, need in needs.items() if need > 0 and need > capacity.get(name, 0) + 1e-9]
    if short:
        raise ConfigError(f"{setting} needs " + " and ".join(short))


def require_gpus(capacity: Mapping[str, float], needed: float, setting: str, source: str = CLUSTER_RESOURCES) -> None:
    """`require` for GPUs alone: e.g. require_gpus(resources, 1, "ppo.use_gpu: true")."""
    require(capacity, {"GPU": needed}, setting, source)


class Capacity(NamedTuple):
    resources: dict[str, float]
    """The most of each resource the cluster has or, where its autoscaler's largest size is known, can have."""
    source: str
    """Where that was read (for the message)."""
    may_grow: bool
    """An autoscaler may still add nodes beyond `resources` (its largest size is not known here)."""


# The node type the autoscaler's read-only provider gives every node of a cluster it cannot scale.
_READONLY_NODE_TYPE = re.compile(r"node_[0-9a-f]{16,}")


def autoscaler_may_add_nodes(status: Optional[bytes], autoscaler_v2: bool) -> bool:
    """Whether a cluster is watched by an autoscaler that launches nodes: autoscaler v2 (KubeRay), or a v1
    autoscaling status (`__autoscaling_status`, `ray status`) naming configured node types (`h100`), not only
    the `node_<id>` types of a fixed cluster's read-only monitor."""
    if autoscaler_v2:
        return True
    if not status:
        return False
    report = json.loads(status).get("autoscaler_report") or {}
    types = {*(report.get("node_type_mapping") or {}).values(), *(report.get("active_nodes") or {}),
             *(report.get("idle_nodes") or {}), *(report.get("pending_launches") or {})}
    return any(not _READONLY_NODE_TYPE.fullmatch(str(t)) for t in types)


def cluster_capacity() -> Capacity:
    """The connected cluster's capacity. Where the autoscaler published its largest size (Ray's cluster config,
    the reader Ray Train itself checks against), every node group at its max count counts; a GPU worker group
    scaled to zero (deploy/: minReplicas 0) is not a cluster without GPUs."""
    import ray

    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    try:  # private APIs: without them, the resources now and no autoscaler
        from ray._private.state import state
        from ray.autoscaler.v2.utils import is_autoscaler_v2
        from ray.experimental.internal_kv import _internal_kv_get

        most = state.get_max_resources_from_cluster_config() or {}
        may_grow = not most and autoscaler_may_add_nodes(_internal_kv_get("__autoscaling_status"),
                                                         is_autoscaler_v2(fetch_from_server=True))
    except Exception as err:
        log.debug("no autoscaler information (%s: %s); checking against %s", type(err).__name__, err,
                  CLUSTER_RESOURCES)
        most, may_grow = {}, False
    if not most:
        return Capacity(resources, CLUSTER_RESOURCES, may_grow)
    for name, value in most.items():
        resources[name] = max(resources.get(name, 0.0), float(value))
    return Capacity(resources, f"{CLUSTER_RESOURCES} and the autoscaler's largest cluster", False)


def check_cluster(needs: Mapping[str, float], setting: str) -> None:
    """`require` against the connected cluster. Where an autoscaler may still add nodes (and its largest size is
    unknown), a shortfall is a warning: the placement waits for the new nodes."""
    capacity = cluster_capacity()
    try:
        require(capacity.resources, needs, setting, capacity.source)
    except ConfigError as err:
        if not capacity.may_grow:
            raise
        log.warning("%s; waiting for the cluster's autoscaler to add them", err)
