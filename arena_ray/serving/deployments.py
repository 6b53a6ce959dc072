"""Ray Serve applications: one per served model (each competitor, the judge, a policy), and `served(...)`, the
one way workflows bring models up and take them down.

Python callers use the DeploymentHandle (`generate(GenerationRequest) -> Completion`, typed records); people and
other tools use HTTP on the Serve proxy (127.0.0.1 unless configured otherwise): the OpenAI API under
/<model>/v1 (serving/openai_api.py), or POST /<model> {"messages": [...], "max_tokens": ...}.

Models whose settings are the same (the same ModelConfig and engine) share one application; an application
already running with the same settings — started earlier in this process, or by an earlier job with
`serve.keep_alive` — is reused instead of starting its engine again.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import asdict
from typing import Callable, Iterable, Iterator, Mapping, Optional

from ray import serve

from arena_ray.errors import ServingError
from arena_ray.records import Completion, GenerationRequest
from arena_ray.serving import openai_api
from arena_ray.serving.engines import build_engine
from arena_ray.settings.cluster import ServeConfig
from arena_ray.settings.models import ModelConfig

log = logging.getLogger(__name__)


def fingerprint(cfg: ModelConfig, engine_factory: Optional[Callable] = None) -> str:
    """What decides how an application answers: its model settings and its engine."""
    engine = "" if engine_factory is None else f"{engine_factory.__module__}.{engine_factory.__qualname__}"
    blob = json.dumps([cfg.model_dump(mode="json"), engine], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@serve.deployment
class ModelServer:
    def __init__(self, name: str, model_config: dict, engine_factory=None):
        self.name = name
        cfg = ModelConfig.model_validate(model_config)
        self._fingerprint = fingerprint(cfg, engine_factory)
        self.engine = (engine_factory or build_engine)(cfg)
        self._weights_lock = asyncio.Lock()

    def fingerprint(self) -> str:
        return self._fingerprint

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

    async def __call__(self, http_request):
        """HTTP on the Serve proxy: the OpenAI API under /<model>/v1 (chat/completions, completions, models) for
        any OpenAI client, and POST /<model> with {"messages": [...]} (this project's own body)."""
        from starlette.responses import JSONResponse

        path = http_request.url.path.rstrip("/")
        try:
            if path.endswith("/v1/models"):
                return JSONResponse(openai_api.models(self.name))
            body = await openai_api.read_body(http_request)
            kind = "chat" if path.endswith("/v1/chat/completions") else "text" if path.endswith("/v1/completions") \
                else None
            request = openai_api.generation_request(body, kind)
            completion = await self.generate(request)
        except openai_api.BadRequest as err:
            return JSONResponse(openai_api.error(str(err), err.status), status_code=err.status)
        except Exception as err:  # an engine's failure, as an OpenAI error body rather than Serve's bare 500
            log.warning("%s: HTTP request failed: %s", self.name, err)
            return JSONResponse(openai_api.error(f"{type(err).__name__}: {err}", 500), status_code=500)
        if kind is None:
            return {**asdict(completion), "model": self.name}
        return JSONResponse(openai_api.response(kind, self.name, completion))

    def __del__(self):
        shutdown = getattr(getattr(self, "engine", None), "shutdown", None)
        if shutdown is not None:
            shutdown()


def deployment_options(name: str, cfg: ModelConfig) -> dict:
    """Replicas and resources from config. Tensor-parallel vLLM gets one GPU bundle per rank in the
    replica's placement group (STRICT_PACK: one node), where vLLM's Ray executor places its workers."""
    env = {"VLLM_LOGGING_LEVEL": "WARNING", **cfg.env}  # vLLM's INFO lines drown the progress bars
    actor_options = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "runtime_env": {"env_vars": env}}
    if cfg.resources:  # custom resources pin the replica to the nodes that have them (mixed clusters)
        actor_options["resources"] = dict(cfg.resources)
    options = dict(name=name, num_replicas=cfg.replicas, max_ongoing_requests=cfg.max_ongoing_requests,
                   ray_actor_options=actor_options, health_check_period_s=10, graceful_shutdown_timeout_s=5)
    tp = cfg.vllm.tensor_parallel_size if cfg.engine == "vllm" else 1
    if tp > 1:
        actor_options["num_gpus"] = 0
        actor_options.pop("resources", None)  # in the placement group's first bundle instead
        options["placement_group_bundles"] = [{"CPU": cfg.num_cpus, "GPU": 1, **cfg.resources}] + \
            [{"GPU": 1, **cfg.resources}] * (tp - 1)
        options["placement_group_strategy"] = "STRICT_PACK"
    return options


def build_app(name: str, cfg: ModelConfig, engine_factory=None):
    return ModelServer.options(**deployment_options(name, cfg)).bind(name, cfg.model_dump(mode="json"),
                                                                    engine_factory)


def start_serve(serve_cfg: ServeConfig) -> None:
    serve.start(http_options={"host": serve_cfg.http_host, "port": serve_cfg.http_port})


def wait_running(names, timeout_s: float) -> None:
    """Until every named application runs; a failed one, or the deadline, is a ServingError."""
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending:
        status = serve.status().applications
        for name in list(pending):
            app = status.get(name)
            if app is None:
                continue
            if app.status == "RUNNING":
                pending.discard(name)
            elif app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise ServingError(f"model '{name}' failed to deploy: {app.message or app.status}")
        if pending and time.monotonic() > deadline:
            raise ServingError(f"models {sorted(pending)} not running after {timeout_s:.0f}s "
                               f"(serve.deploy_timeout_s); see the Ray dashboard's Serve tab")
        if pending:
            time.sleep(1.0)


def deploy(apps: Mapping[str, object], timeout_s: float) -> dict[str, serve.handle.DeploymentHandle]:
    """Deploy applications (bound by build_app or another builder) all at once, so their engines start in
    parallel, then wait until all run."""
    serve.run_many([serve.RunTarget(app, name=name, route_prefix=f"/{name}") for name, app in apps.items()],
                   wait_for_applications_running=False)
    wait_running(apps, timeout_s)
    return {name: serve.get_app_handle(name) for name in apps}


def undeploy(names) -> None:
    for name in names:
        serve.delete(name, _blocking=True)


class Running:
    """Model applications of this cluster this process may use: fingerprint → application name; `owned`: those
    it started (only those are ever taken down by it)."""

    apps: dict[str, str] = {}
    owned: set[str] = set()

    @classmethod
    def find(cls, fp: str, name: str) -> Optional[str]:
        """A running application with these settings: one this process knows, or `name` left running by an
        earlier job (serve.keep_alive) whose settings match."""
        status = serve.status().applications
        app = cls.apps.get(fp)
        if app is not None and app in status:
            return app
        if name in status and status[name].status == "RUNNING":
            try:
                same = serve.get_app_handle(name).fingerprint.remote().result(timeout_s=30) == fp
            except Exception:  # an application of another kind under that name: not one to reuse
                same = False
            if same:
                cls.apps[fp] = name
                return name
        return None

    @classmethod
    def started(cls, apps: Mapping[str, str]) -> None:
        names = set(apps.values())
        for fp, app in list(cls.apps.items()):  # a name deployed anew replaces what ran under it
            if app in names:
                del cls.apps[fp]
        cls.apps.update(apps)
        cls.owned |= names


@contextlib.contextmanager
def served(models: Mapping[str, ModelConfig], serve_cfg: ServeConfig, *,
           factories: Optional[Mapping[str, Callable]] = None, exclusive: Iterable[str] = (),
           between_stages: bool = False) -> Iterator[dict[str, serve.handle.DeploymentHandle]]:
    """Serve `models` (name → settings) for the block and yield a handle per name; on exit (also on error) take
    down what the block started, unless serve.keep_alive. Models with the same settings share one application,
    and applications already running with them are reused.

    exclusive: names that get an application of their own (a policy whose weights a trainer changes).
    between_stages: the block is one stage of a workflow (inside `stage_serving`); with
    serve.reuse_between_stages what it starts stays up for later stages, and what earlier stages started but
    this one does not need is taken down first."""
    factories = factories or {}
    wanted = {name: fingerprint(cfg, factories.get(name)) + (f"/{name}" if name in exclusive else "")
              for name, cfg in models.items()}
    reuse = between_stages and serve_cfg.reuse_between_stages
    start_serve(serve_cfg)
    if reuse:
        release(keep=set(wanted.values()))
    apps: dict[str, str] = {}  # fingerprint → application name
    new: dict[str, str] = {}
    for name in sorted(models):
        fp = wanted[name]
        if fp not in apps:
            apps[fp] = Running.find(fp, name) or name
            if fp not in Running.apps or Running.apps[fp] != apps[fp]:
                new[fp] = name
    try:
        if new:
            log.info("starting %s; reusing %s", sorted(new.values()), sorted(set(apps.values()) - set(new.values())))
            deploy({name: build_app(name, models[name], factories.get(name)) for name in new.values()},
                   serve_cfg.deploy_timeout_s)
            Running.started(new)
        yield {name: serve.get_app_handle(apps[fp]) for name, fp in wanted.items()}
    finally:
        if not (reuse or serve_cfg.keep_alive):
            release(only=set(new.values()))


@contextlib.contextmanager
def stage_serving(serve_cfg: ServeConfig) -> Iterator[None]:
    """Around a workflow's stages: at the end, take down what its stages left up (unless serve.keep_alive)."""
    try:
        yield
    finally:
        if not serve_cfg.keep_alive:
            release()


def release(keep: Iterable[str] = (), only: Optional[set[str]] = None) -> None:
    """Take down applications this process started: those named in `only`, else all whose fingerprint is not in
    `keep`."""
    keep = set(keep)
    for fp, app in list(Running.apps.items()):
        if app not in Running.owned or (app not in only if only is not None else fp in keep):
            continue
        del Running.apps[fp]
        Running.owned.discard(app)
        with contextlib.suppress(Exception):  # already gone (a shut-down cluster, a deleted app)
            undeploy([app])
