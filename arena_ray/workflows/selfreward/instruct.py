"""Self-instruction creation (Self-Rewarding LMs): M_{t-1}, served as the self-judge stage serves it, writes
iteration t's prompts from few-shot examples (seed tasks and the prompts earlier iterations kept), and
Self-Instruct's filters (data/self_instruct.py) decide which are kept.

iter<t>/prompts/candidates.jsonl   every generation request's answer (key `c<k>`; serving/batch.py: resumes)
iter<t>/prompts/prompts.parquet    the kept prompts and their provenance (an instruction file load_instructions reads)
iter<t>/prompts/done.json          the counts: requests, failed, unparsed, kept and each refusal reason
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pyarrow as pa

from arena_ray.data.ingest import load_instructions
from arena_ray.data.self_instruct import Candidate, PromptFilter, collect, load_seed_tasks
from arena_ray.errors import InputError
from arena_ray.records import GenerationRequest, Instruction, SamplingSpec
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.serving.batch import BatchItem, run_batch
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.deployments import served
from arena_ray.settings import Config
from arena_ray.settings.models import ModelConfig
from arena_ray.train.registry import Registry
from arena_ray.workflows.kit import once
from arena_ray.workflows.selfreward.judge import model_entry

log = logging.getLogger(__name__)

PROMPTS_FILE = Path("prompts") / "prompts.parquet"
# prompts.parquet: an instruction table (instruction_id, text, source, category) plus provenance; the file's
# metadata `filter_stats` holds the iteration's counts.
PROMPTS_SCHEMA = pa.schema([
    ("instruction_id", pa.string()),     # gen-<t>-<k>
    ("text", pa.string()),
    ("source", pa.string()),             # "generated"
    ("category", pa.string()),
    ("iteration", pa.int64()),
    ("generator", pa.string()),          # the version that wrote it (M_{t-1})
    ("candidate", pa.string()),          # its request's key in candidates.jsonl
    ("few_shot_ids", pa.list_(pa.string())),
    ("nearest_id", pa.string()),         # the most similar known prompt the near-duplicate index found ("" none)
    ("nearest_similarity", pa.float64()),
])


def eval_paths(sr) -> list[str]:
    """The evaluation files generated prompts must not leak from: `decontaminate` and `eval_instructions`."""
    return list(dict.fromkeys([*sr.prompts.generate.decontaminate, sr.eval_instructions]))


def check_sources(sr) -> None:
    """Every file the stage reads, read once before anything runs (an InputError names a bad one)."""
    load_seed_tasks(sr.prompts.generate.seed_path)
    for path in eval_paths(sr):
        load_instructions(path)


def earlier_prompts(root: Path, t: int) -> list[Instruction]:
    """The prompts iterations 1..t-1 kept, read back from their prompts.parquet."""
    return [p for s in range(1, t) for p in load_instructions(root / f"iter{s}" / PROMPTS_FILE)]


def generate_prompts(config: Config, it: Path, registry: Registry, name: str, t: int, earlier: list[Instruction],
                     show: bool) -> list[Instruction]:
    """Iteration t's prompts, written by version `name` (once: a re-run reads prompts.parquet back)."""
    once(it / "prompts", lambda: _generate(config, it / "prompts", registry, name, t, earlier, show))
    return load_instructions(it / PROMPTS_FILE)


def _generate(config: Config, out: Path, registry: Registry, name: str, t: int, earlier: list[Instruction],
              show: bool) -> dict:
    sr = config.self_reward
    gen, wanted = sr.prompts.generate, sr.prompts.per_iteration
    seeds = load_seed_tasks(gen.seed_path)
    evals = [p for path in eval_paths(sr) for p in load_instructions(path)]
    pool = [*seeds, *earlier]
    keep = PromptFilter(pool, evals, near_duplicate=gen.near_duplicate, min_words=gen.min_words,
                        max_words=gen.max_words, ngram=gen.decontaminate_ngram)
    cap = wanted * gen.attempts_per_prompt
    requests = out / "candidates.jsonl"
    cfg = ModelConfig.model_validate(model_entry(config, registry, name))
    with served({name: cfg}, config.serve, between_stages=True) as handles:
        client = ServeModelClient(handles[name], sr.max_in_flight)

        def ask(batch: list[Candidate]) -> dict[str, str]:
            items = [BatchItem(c.key, GenerationRequest(
                f"instruct-{t}-{c.key}", c.messages,
                SamplingSpec(max_tokens=gen.max_tokens, temperature=gen.temperature, top_p=gen.top_p,
                             seed=1_000_000 * t + c.index, regex=gen.output_regex))) for c in batch]
            rows = asyncio.run(run_batch(client, items, requests, max_in_flight=sr.max_in_flight,
                                         timeout_s=sr.request_timeout_s, max_attempts=1, desc="prompts",
                                         show=show))
            return {key: row.text or "" for key, row in rows.items()}

        kept, counts = collect(ask, pool, keep, wanted=wanted, cap=cap, id_prefix=f"gen-{t}", k=gen.few_shot,
                               seed=f"{gen.seed}/{t}", max_chars=gen.max_example_chars, min_batch=sr.max_in_flight)
    refused = {k: v for k, v in counts.items() if k not in ("requests", "kept") and v}
    if not kept:
        raise InputError(f"iteration {t}: none of the {counts['requests']} prompts {name} wrote was kept "
                         f"(refused: {refused or 'none'}; answers in {requests}); raise "
                         "self_reward.prompts.generate.attempts_per_prompt or constrain them with output_regex")
    if len(kept) < wanted:
        log.warning("iteration %d: %d of %d prompts kept after %d generation requests (refused: %s); going on with "
                    "%d", t, len(kept), wanted, counts["requests"], refused, len(kept))
    table = pa.Table.from_pylist(
        [{"instruction_id": k.instruction_id, "text": k.text, "source": "generated", "category": "", "iteration": t,
          "generator": name, "candidate": k.candidate, "few_shot_ids": list(k.examples),
          "nearest_id": k.nearest_id, "nearest_similarity": k.similarity} for k in kept], schema=PROMPTS_SCHEMA)
    stats = {"prompts": len(kept), "wanted": wanted, "cap": cap, "generator": name, **counts}
    write_atomic(table.replace_schema_metadata({"filter_stats": json.dumps(stats)}), out / "prompts.parquet")
    log.info("iteration %d: %s", t, json_text(stats))
    return {**stats, "file": str(out / "prompts.parquet")}
