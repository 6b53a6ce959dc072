"""configs/reference.yaml is generated from the settings classes and kept current; every key has a meaning;
every shipped config opens with the command that runs it and carries no section that command does not read."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from arena_ray.settings.reference import render, undocumented

ROOT = Path(__file__).resolve().parents[2]
# What each workflow reads of a root config (settings.config.Config).
READS = {
    "arena": {"run_dir", "ray", "serve", "instructions", "models", "arena", "judge", "rating"},
    "flywheel": {"ray", "serve", "models", "arena", "judge", "rating", "flywheel"},
    "self-reward": {"ray", "serve", "models", "arena", "judge", "rating", "self_reward"},
    "ppo": {"ray", "serve", "models", "judge", "ppo"},
}
COMMAND = re.compile(r"^# (?:ray job submit .* -- )?arena-ray ([a-z-]+(?: prepare)?) --config (configs/\S+\.yaml)$")


def test_reference_yaml_is_current():
    text = (ROOT / "configs" / "reference.yaml").read_text()
    assert text == render(), "configs/reference.yaml is stale: python -m arena_ray.settings.reference > it"
    workflows, data, testset = yaml.safe_load_all(text)  # three YAML documents, one per kind of config
    assert {"run_dir", "models", "arena", "judge", "flywheel", "self_reward", "ppo"} <= set(workflows)
    assert {"sources", "clean", "split", "out_dir"} <= set(data)
    assert {"sources", "diverse", "hard", "decontaminate"} <= set(testset)


def test_every_setting_has_a_meaning():
    assert undocumented() == []


def test_configs_open_with_their_command_and_hold_only_what_it_reads():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name == "reference.yaml":
            continue
        header = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
        commands = [m.group(1) for m in map(COMMAND.match, header) if m and m.group(2) == f"configs/{path.name}"]
        assert commands and COMMAND.match(header[0]), f"{path.name} does not open with the command that runs it"
        if commands[0] in ("data prepare", "testset"):
            continue
        read = set().union(*(READS[c] for c in commands))
        unused = set(yaml.safe_load(path.read_text())) - read
        assert not unused, f"{path.name}: sections {sorted(unused)} are read by none of {commands}"
