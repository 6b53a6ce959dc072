"""Weight sync from a trainer into serving vLLM engines, in place (no restart, KV cache kept).

The trainer packs its state dict as safetensors bytes (no pickle), publishes it through the Ray object store
(`WeightStore`, a named actor per served model); a replica that is asked for a newer weight version than it
holds fetches the bytes and hands them to its vLLM workers through `collective_rpc`, where this module's
worker extension reloads them with vLLM's in-place `reload_weights` (which also re-runs the backend's weight
processing, e.g. the CPU backend's repacking). A replica that Serve restarts comes back with the checkpoint's
weights and catches up on its next request. This is `ppo.weight_sync: object_store`, the path that works on CPU.

On GPUs (`nccl`, `ipc`) the bytes skip the object store: the learner pushes its tensors into every replica's
vLLM through vLLM's own weight-transfer API (train/weight_push.py, serving/weight_transfer.py, planned in
weight_plan.py), and the store publishes only a receipt of the version every replica reported. Either way a
replica stamps each answer with the version it holds. (`ppo.backend: openrlhf` leaves all of this to OpenRLHF.)
"""
from __future__ import annotations

STORE_NAMESPACE = "arena_ray_weights"
WORKER_EXTENSION = "arena_ray.serving.weights.WeightSyncExtension"


def store_name(model: str) -> str:
    return f"weights:{model}"


def pack_state(state_dict) -> bytes:
    """A torch state dict as safetensors bytes. Tied tensors (embeddings = lm_head) are sent under every name:
    vLLM's in-place reload restores a layer it gets no weights for, which would undo the tied embedding."""
    from safetensors.torch import save

    seen, out = set(), {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu").contiguous()
        ptr = tensor.data_ptr()
        out[name] = tensor.clone() if ptr in seen else tensor  # safetensors refuses shared storage
        seen.add(ptr)
    return save(out)


class WeightSyncExtension:
    """Mixed into vLLM's worker class (engine arg `worker_extension_cls`); runs inside each vLLM worker."""

    def load_state(self, blob: bytes) -> int:
        from safetensors.torch import load

        named = load(blob)
        self.reload_weights(weights_iterator=iter(named.items()))
        return len(named)
