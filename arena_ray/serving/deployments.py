"""Ray Serve applications: one per served model (each competitor, and the judge).

Python callers use the DeploymentHandle (`generate(GenerationRequest) -> Completion`, typed records);
people and other tools use HTTP: POST /<model> {"messages": [...], "max_tokens": ...} on the Serve proxy,
which binds to 127.0.0.1 unless configured otherwise.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from ray import serve
from ray.serve import api as serve_api

from arena_ray.config import Config, ModelConfig
from arena_ray.records import ChatMessage, Completion, GenerationRequest, SamplingSpec
from arena_ray.serving.engines import build_engine


class DeployError(RuntimeError):
    pass


@serve.deployment
class ModelServer:
    def __init__(self, name: str, model_config: dict, engine_factory=None):
        self.name = name
        cfg = ModelConfig.model_validate(model_config)
        self.engine = (engine_factory or build_engine)(cfg)
        self._weights_lock = asyncio.Lock()

    async def generate(self, request: GenerationRequest) -> Completion:
        if request.weight_version is not None and request.weight_version > self.weight_version():
            await self._catch_up(request.weight_version)
        return await self.engine.generate(request)

    def weight_version(self) -> int:
        return getattr(self.engine, "weight_version", 0)

    async def _catch_up(self, wanted: int) -> None:
        """Load the latest published weights (serving/weights.py) before answering a request that needs them."""
        async with self._weights_lock:  # one load at a time; the requests queued behind it find it done
            if self.weight_version() >= wanted:
                return
            from arena_ray.serving.weight_store import find_store

            version, refs = await find_store(self.name).latest.remote()
            if version < wanted or not refs:
                raise RuntimeError(f"{self.name}: weight version {wanted} requested, {version} published")
            await self.engine.load_weights(await refs[0], version)

    async def check_health(self) -> None:
        """Serve calls this periodically; a dead engine fails it and Serve replaces the replica."""
        check = getattr(self.engine, "check_health", None)
        if check is not None:
            await check()

    async def __call__(self, http_request) -> dict:
        body = await http_request.json()
        messages = tuple(ChatMessage(m["role"], m["content"]) for m in body["messages"])
        sampling = None
        if "max_tokens" in body:
            sampling = SamplingSpec(max_tokens=int(body["max_tokens"]), temperature=float(body.get("temperature", 0)),
                                    top_p=float(body.get("top_p", 1.0)))
        completion = await self.generate(GenerationRequest(f"http-{time.time_ns()}", messages, sampling,
                                                           body.get("instruction_id")))
        out = asdict(completion)
        out["model"] = self.name
        return out

    def __del__(self):
        shutdown = getattr(getattr(self, "engine", None), "shutdown", None)
        if shutdown is not None:
            shutdown()


def app_name(model: str) -> str:
    return model


def deployment_options(name: str, cfg: ModelConfig) -> dict:
    """Replicas and resources from config. Tensor-parallel vLLM gets one GPU bundle per rank in the
    replica's placement group (STRICT_PACK: one node), where vLLM's Ray executor places its workers."""
    env = {"VLLM_LOGGING_LEVEL": "WARNING", **cfg.env}  # vLLM's INFO lines drown the progress bars
    actor_options = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "runtime_env": {"env_vars": env}}
    options = dict(name=name, num_replicas=cfg.replicas, max_ongoing_requests=cfg.max_ongoing_requests,
                   ray_actor_options=actor_options, health_check_period_s=10, graceful_shutdown_timeout_s=5)
    tp = cfg.vllm.tensor_parallel_size if cfg.engine == "vllm" else 1
    if tp > 1:
        actor_options["num_gpus"] = 0
        options["placement_group_bundles"] = [{"CPU": cfg.num_cpus, "GPU": 1}] + [{"GPU": 1}] * (tp - 1)
        options["placement_group_strategy"] = "STRICT_PACK"
    return options


def build_app(name: str, cfg: ModelConfig, engine_factory=None):
    return ModelServer.options(**deployment_options(name, cfg)).bind(name, cfg.model_dump(mode="json"),
                                                                    engine_factory)


def start_serve(config: Config) -> None:
    serve.start(http_options={"host": config.serve.http_host, "port": config.serve.http_port})


def deploy(apps: dict[str, object], timeout_s: float) -> dict[str, serve.handle.DeploymentHandle]:
    """Deploy all applications at once (their engines start in parallel), then wait until all run."""
    for name, app in apps.items():
        # serve.run waits for each app in turn; the non-blocking form lets the engines start together.
        serve_api._run(app, name=app_name(name), route_prefix=f"/{name}", _blocking=False)
    deadline = time.monotonic() + timeout_s
    pending = set(apps)
    while pending:
        status = serve.status().applications
        for name in list(pending):
            app = status.get(app_name(name))
            if app is None:
                continue
            if app.status == "RUNNING":
                pending.discard(name)
            elif app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise DeployError(f"model '{name}' failed to deploy: {app.message or app.status}")
        if pending and time.monotonic() > deadline:
            raise DeployError(f"models {sorted(pending)} not running after {timeout_s:.0f}s "
                              f"(serve.deploy_timeout_s); see the Ray dashboard's Serve tab")
        if pending:
            time.sleep(1.0)
    return {name: serve.get_app_handle(app_name(name)) for name in apps}


def undeploy(names) -> None:
    for name in names:
        serve.delete(app_name(name), _blocking=True)
