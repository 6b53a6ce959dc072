"""A Serve application builder for long-lived serving (KubeRay RayService, `serve run`): one model of a config
file as the same application the arena deploys.

    serve run arena_ray.serving.app:build_model_app config=configs/local.yaml model=smollm2
"""
from __future__ import annotations

from arena_ray import settings as cfg
from arena_ray.errors import ConfigError
from arena_ray.serving.deployments import build_app


def build_model_app(args: dict):
    if "config" not in args or "model" not in args:
        raise ConfigError("build_model_app needs args 'config' (a YAML path) and 'model' (a name in it)")
    config = cfg.load(args["config"])
    if args["model"] not in config.models:
        raise ConfigError(f"{args['config']}: no model '{args['model']}' (models: {sorted(config.models)})")
    return build_app(args["model"], config.models[args["model"]])
