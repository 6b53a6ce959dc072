"""The optional seed stage on a real local Ray: IFT rows from instructions + reference answers, EFT rows from
the model's own rubric judgments of PandaLM pairs kept only where they agree with the human label, SFT on
both (Ray Train), registered as version 1."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.data.preferences import load_pandalm
from arena_ray.judging.prompts import load_rubric_template
from arena_ray.serving.batch import read_rows
from arena_ray.serving.deployments import stage_serving
from arena_ray.settings import from_dict
from arena_ray.train.registry import Registry
from arena_ray.workflows.selfreward import seed
from tests.conftest import ROOT, SHARED_DATA
from tests.helpers import ANSWERS, ARENA_HARD, tiny_config_dict

PANDALM = SHARED_DATA / "preferences" / "pandalm_testset.json"


@pytest.mark.slow
def test_seed_stage_builds_ift_and_eft_and_trains(local_ray, tmp_path, tiny_model_dir):
    template = yaml.safe_load((ROOT / "arena_ray" / "judging" / "templates" / "rubric-additive-v1.yaml").read_text())
    template.update(version="rubric-short", output_regex="[a-z ]{0,20}\nScore: [0-5]")
    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump(template))
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["self_reward"] = {
        "dir": str(tmp_path / "sr"), "model": "tiny", "judge_prompt": str(tmp_path / "rubric.yaml"),
        "judge_max_tokens": 24, "constrain_format": True, "judgments_per_sample": 2,
        "seed": {"ift_instructions": str(ARENA_HARD), "ift_answers": str(ANSWERS / "gpt-4-0314.jsonl"), "ift_limit": 4,
                 "eft_path": str(PANDALM), "eft_offset": 900, "eft_limit": 8,
                 "train": {"max_steps": 2, "per_device_batch_size": 2, "max_length": 1024, "cpus_per_worker": 2,
                           "learning_rate": 1e-4}}}
    config = from_dict(data)
    root = tmp_path / "sr"
    registry = Registry(root)
    registry.register("tiny@0", tiny_model_dir, parent=None, stage="base", iteration=0)
    with stage_serving(config.serve):
        name = seed.run(config, root, registry, load_rubric_template(str(tmp_path / "rubric.yaml")), show=False)
    assert name == "tiny@1" and registry.get("tiny@1").stage == "sft"
    assert registry.get("tiny@1").digest != registry.get("tiny@0").digest
    rows = pq.read_table(root / "seed" / "data" / "sft.parquet").to_pylist()
    ift = [r for r in rows if "Review the user's question" not in r["messages"][0]["content"]]
    assert len(ift) == 4 and all(r["messages"][1]["role"] == "assistant" for r in rows)
    # EFT keeps exactly the judgment pairs whose order agrees with the human majority label.
    judged = {r.key: r.text for r in read_rows(root / "seed" / "eft_judgments.jsonl") if r.ok}
    from arena_ray.judging.parse import parse_rubric
    expected = 0
    for p in load_pandalm(PANDALM, 900, 8):
        for j in range(2):
            s1, s2 = (parse_rubric(judged.get(f"h{p.pair_id}#{r}#j{j}", "")) for r in (1, 2))
            if p.label and s1 is not None and s2 is not None and s1 != s2 and (s1 > s2) == (p.label > 0):
                expected += 2
    assert len(rows) - len(ift) == expected
