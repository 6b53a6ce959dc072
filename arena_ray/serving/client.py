"""The handle client every workflow uses: a Serve DeploymentHandle as an engine-like `generate(request)`."""
from __future__ import annotations

import asyncio

from arena_ray.records import Completion, GenerationRequest


class ServeModelClient:
    """A DeploymentHandle as a model client; a cancelled (timed-out) call cancels the Serve request too.

    `capacity`: requests worth keeping in flight (replicas x max_ongoing_requests)."""

    def __init__(self, handle, capacity: int):
        self.handle, self.capacity = handle, capacity

    async def generate(self, request: GenerationRequest) -> Completion:
        response = self.handle.generate.remote(request)
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()
            raise
