"""The named actor that holds the latest published policy weights of one served model (see weights.py)."""
from __future__ import annotations

import ray

from arena_ray.serving.weights import STORE_NAMESPACE, store_name


@ray.remote(num_cpus=0)
class WeightStore:
    def __init__(self):
        self.version, self.blob = 0, None

    def publish(self, version: int, blob_ref: list) -> None:
        """blob_ref: [ObjectRef] (in a list, so Ray passes the reference and not the bytes)."""
        if version <= self.version:
            raise ValueError(f"weight version {version} is not newer than the published {self.version}")
        self.version, self.blob = version, blob_ref[0]

    def latest(self) -> tuple[int, list]:
        return self.version, [self.blob] if self.blob is not None else []


def open_store(model: str):
    """Get or create the store for `model` (the driver's process keeps it alive)."""
    return WeightStore.options(name=store_name(model), namespace=STORE_NAMESPACE, get_if_exists=True).remote()


def find_store(model: str):
    return ray.get_actor(store_name(model), namespace=STORE_NAMESPACE)
