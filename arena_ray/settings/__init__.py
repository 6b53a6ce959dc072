"""Every setting of every workflow, typed, with its default and meaning, in one package (the ground layer).
`configs/reference.yaml` is generated from it (arena_ray.settings.reference)."""
from arena_ray.settings.config import Config
from arena_ray.settings.loading import OVERRIDE_HELP, dump, from_dict, load

__all__ = ["Config", "OVERRIDE_HELP", "dump", "from_dict", "load"]
