"""Checks that run before any cluster starts, so bad input fails in seconds with a clear message."""
from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from arena_ray.data.answers import load_answers
from arena_ray.errors import ConfigError
from arena_ray.records import Instruction
from arena_ray.settings import Config
from arena_ray.settings.models import ModelConfig

log = logging.getLogger(__name__)


def check_vllm(name: str, cfg: ModelConfig) -> None:
    if not (Path(cfg.path) / "config.json").is_file():
        raise ConfigError(f"model '{name}': {cfg.path} is not a Hugging Face model folder (no config.json); "
                          f"run `arena-ray models prepare` or fix models.{name}.path")


def check_replay(name: str, cfg: ModelConfig, instructions: Sequence[Instruction]) -> None:
    answers = load_answers(cfg.path)  # raises InputError naming the file and line
    missing = [i.instruction_id for i in instructions if i.instruction_id not in answers]
    if len(missing) == len(instructions):
        raise ConfigError(f"model '{name}': {cfg.path} has no answer for any of the {len(instructions)} "
                          f"instructions (first id: {instructions[0].instruction_id}); wrong answers file?")
    if missing:
        log.warning("model '%s': %d of %d instructions have no recorded answer in %s; their battles are "
                    "counted as failed", name, len(missing), len(instructions), cfg.path)


def check_openai(name: str, cfg: ModelConfig) -> None:
    url = cfg.openai.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    key = os.environ.get(cfg.openai.api_key_env)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        urllib.request.urlopen(request, timeout=cfg.openai.connect_timeout_s).close()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise ConfigError(f"model '{name}': {cfg.openai.base_url} refused the credentials "
                              f"(HTTP {err.code}); set ${cfg.openai.api_key_env}") from None
        # Other HTTP answers (e.g. 404 on /models) still prove the endpoint is reachable.
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(f"model '{name}': OpenAI-compatible endpoint {cfg.openai.base_url} is unreachable "
                          f"({reason})") from None


def check_models(config: Config, instructions: Sequence[Instruction]) -> None:
    for name in config.served_models():
        cfg = config.models[name]
        if cfg.engine == "vllm":
            check_vllm(name, cfg)
        elif cfg.engine == "replay":
            check_replay(name, cfg, instructions)
        elif cfg.engine == "openai":
            check_openai(name, cfg)
