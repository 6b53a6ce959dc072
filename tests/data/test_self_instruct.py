"""Self-instruction creation's pure part on the real Self-Instruct seed tasks and evaluation sets: the few-shot
prompt, reading a task out of a model's answer, Self-Instruct's filters, and the generation rounds."""
from __future__ import annotations

import random
import re

import pytest
from pydantic import ValidationError

from arena_ray.data.ingest import load_instructions
from arena_ray.data.self_instruct import (
    PromptFilter,
    collect,
    few_shot_messages,
    latin_text,
    load_seed_tasks,
    parse_generated,
)
from arena_ray.records import Instruction
from arena_ray.settings.selfreward import GenerateConfig
from tests.conftest import SHARED_DATA

INSTRUCTIONS = SHARED_DATA / "instructions"
pytestmark = pytest.mark.skipif(not INSTRUCTIONS.is_dir(), reason="../shared/data not present")
# The e2e's constrained output for a random-weight model (self_reward.prompts.generate.output_regex).
E2E_REGEX = r"[A-Z][a-z]{2,9}( [a-z]{2,9}){5,14}\?"


@pytest.fixture(scope="module")
def seeds():
    return load_seed_tasks(str(INSTRUCTIONS / "self_instruct_seed_tasks.jsonl"))


@pytest.fixture(scope="module")
def evals():
    return load_instructions(INSTRUCTIONS / "vicuna_bench.jsonl") + load_instructions(INSTRUCTIONS / "mt_bench.jsonl")


@pytest.fixture
def keep(seeds, evals):
    return PromptFilter(seeds, evals)


def test_seed_tasks_are_the_175_self_instruct_tasks(seeds):
    assert len(seeds) == 175 and seeds[0].instruction_id == "seed_task_0"
    assert seeds[8].text == "Generate a haiku using the following word:\n\nsummer"   # instruction + input


@pytest.mark.parametrize("text, reason, nearest", [
    ("Brainstorm a list of possible New Year's resolutions.", "duplicate", "seed_task_6"),        # verbatim
    ("brainstorm a list of possible new year's resolutions", "duplicate", "seed_task_6"),         # case, punctuation
    ("Generate a haiku using the following word:", "duplicate", "seed_task_8"),                   # without its input
    ("Brainstorm a list of some possible New Year resolutions.", "near_duplicate", "seed_task_6"),
    ("Recommend a good movie for me to watch this weekend and explain the reason.", "near_duplicate", "seed_task_9"),
])
def test_a_seed_task_generated_again_is_a_duplicate(keep, text, reason, nearest):
    assert keep.add(text) == reason
    assert keep.last.nearest_id == nearest
    assert keep.counts[reason] == 1 and keep.counts["kept"] == 0


@pytest.mark.parametrize("text, nearest, detail", [
    ("How can I improve my time management skills?", "1", "same words"),  # Vicuna-bench, verbatim
    ("How can I improve my time-management skills quickly?", "1", "Jaccard"),  # lightly edited
    ("Before you start, compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural "
     "experiences and must-see attractions, then suggest three souvenirs a student could bring home for friends "
     "and explain in detail which local foods are worth trying on each of the main islands.", "77", "shares a 13-gram"),  # Vicuna 77 = MT-bench 81
])
def test_an_evaluation_prompt_is_contaminated(keep, text, nearest, detail):
    assert keep.add(text) == "contaminated"
    assert keep.last.nearest_id == nearest and detail in keep.last.detail


def test_filters_refuse_keywords_other_scripts_and_length(keep):
    assert keep.add("Draw a flowchart of the steps needed to bake sourdough bread.") == "keyword"
    assert keep.last.detail == "draw"
    assert keep.add("Plot the monthly rainfall of Lisbon as a bar chart.") == "keyword"
    assert keep.add("Tell me how to go  to the nearest train station from here.") == "keyword"
    assert keep.add("Write a program that prints the prime numbers below one hundred.") == "keyword"
    assert keep.add("Напишите короткое стихотворение о весне и солнце.") == "language"
    assert keep.add("写一首关于春天和太阳的短诗，并解释它的意思。") == "language"
    assert keep.add("- Summarise the plot twists of a famous detective novel.") == "language"   # starts with punctuation
    assert keep.add("Hi there") == "too_short"
    assert keep.add(" ".join(["word"] * 151)) == "too_long"
    assert keep.counts == {"kept": 0, "too_short": 1, "too_long": 1, "language": 3, "keyword": 4, "contaminated": 0,
                           "duplicate": 0, "near_duplicate": 0}


def test_a_new_instruction_is_kept_once(keep):
    new = "Explain the mapping between keys and values in a Python dictionary to a ten-year-old."
    assert keep.add(new, "gen-1-0") is None          # "mapping" is not the blacklisted word "map"
    assert keep.add("Écris un court poème sur la mer, le vent et les bateaux du port.") is None   # Latin script
    assert keep.add(new) == "duplicate" and keep.last.nearest_id == "gen-1-0"
    assert keep.add("Explain the mapping between keys and values in a Python dictionary to a child.") == "near_duplicate"
    assert keep.counts["kept"] == 2


def test_references_grow_with_earlier_prompts(seeds):
    earlier = [Instruction("gen-1-3", "Describe three habits that help a person sleep better at night.", "generated")]
    keep = PromptFilter([*seeds, *earlier])
    assert keep.add("Describe three habits that help a person sleep better at night!") == "duplicate"
    assert keep.last.nearest_id == "gen-1-3"


def test_constrained_random_text_passes_the_filters(keep):
    """What the e2e's random-weight model writes under E2E_REGEX: random lower-case words, a capital and a `?`."""
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(30):
        ws = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(5, 14))]
        text = "".join(rng.choice(letters) for _ in range(rng.randint(3, 10))).capitalize() + " " + " ".join(ws) + "?"
        assert re.fullmatch(E2E_REGEX, text) and latin_text(text)
        assert keep.add(parse_generated(text)) is None, (text, keep.last)


def test_few_shot_prompt_is_seeded_and_numbered(seeds):
    (message,), ids = few_shot_messages(seeds, k=8, seed=3, max_chars=600)
    assert message.role == "user" and message.content.startswith("Come up with a new task")
    assert len(ids) == len(set(ids)) == 8
    for i, sid in enumerate(ids, 1):
        text = next(s.text for s in seeds if s.instruction_id == sid)
        assert f"Task {i}: {text}" in message.content
    assert message.content.rstrip().endswith("Task 9:")
    assert few_shot_messages(seeds, k=8, seed=3, max_chars=600) == ((message,), ids)
    assert few_shot_messages(seeds, k=8, seed=4, max_chars=600)[1] != ids
    long = {s.instruction_id for s in seeds if len(s.text) > 600}
    assert long and not any(long & set(few_shot_messages(seeds, 8, s, max_chars=600)[1]) for s in range(30))
    assert len(few_shot_messages(seeds[:3], k=8)[1]) == 3


@pytest.mark.parametrize("raw, task", [
    (" Write a limerick about a cat who loves lasagna.\nTask 10: Name three rivers in Africa.",
     "Write a limerick about a cat who loves lasagna."),
    ("Task 9: Summarise the following paragraph in one sentence.\n\nThe city council met on Monday to discuss "
     "the new park.\n\nTask 10: Translate it into French.",
     "Summarise the following paragraph in one sentence.\n\nThe city council met on Monday to discuss the new park."),
    ("Sure! Here is a new task:\n\nTask 9: Suggest five names for a bakery that sells sourdough bread.",
     "Suggest five names for a bakery that sells sourdough bread."),
    ("Here is a new task:\nList the planets of the solar system in order of their size.",
     "List the planets of the solar system in order of their size."),
    ("9. Give me tips for running my first marathon.\n10. Explain photosynthesis.",
     "Give me tips for running my first marathon."),
    ('"Describe your ideal weekend in three sentences."', "Describe your ideal weekend in three sentences."),
    ("Instruction: Rewrite the sentence in the passive voice.\nOutput: The ball was thrown.",
     "Rewrite the sentence in the passive voice."),
    ("**Task 9:** Compare tea and coffee for a morning routine.\nAnswer: Tea has less caffeine.",
     "Compare tea and coffee for a morning routine."),
    ("Abcde fghij klm nopq rstu vwxyz?", "Abcde fghij klm nopq rstu vwxyz?"),
    ("   \n", None),
    ("Task 9:", None),
])
def test_parse_generated(raw, task):
    assert parse_generated(raw) == task


def test_collect_keeps_in_request_order_and_stops(seeds):
    answers = {  # what a model wrote per request: duplicates, junk and new tasks
        "c0": "Task 9: Make a grocery list for a healthy meal.",                   # seed_task_11
        "c1": "Task 9: Describe a sunrise over the ocean to someone who has never seen one.",
        "c2": "",
        "c3": "Task 9: Describe a sunrise over the ocean to someone who has never seen one.",
        "c4": "Task 9: Suggest a weekly exercise routine for a busy office worker.",
        "c5": "Task 9: Explain how vaccines train the immune system, in simple words.",
    }
    asked = []

    def ask(batch):
        asked.append([c.key for c in batch])
        return {c.key: answers[c.key] for c in reversed(batch) if c.key in answers and c.key != "c6"}

    kept, counts = collect(ask, seeds, PromptFilter(seeds), wanted=3, cap=20, id_prefix="gen-1", min_batch=4)
    assert [k.text for k in kept] == [parse_generated(answers[k]) for k in ("c1", "c4", "c5")]
    assert [k.instruction_id for k in kept] == ["gen-1-0", "gen-1-1", "gen-1-2"]
    assert [k.candidate for k in kept] == ["c1", "c4", "c5"] and all(len(k.examples) == 8 for k in kept)
    assert asked == [["c0", "c1", "c2", "c3", "c4", "c5"]]      # 2 × wanted in the first round
    assert counts["duplicate"] + counts["near_duplicate"] == 2 and counts["unparsed"] == 1
    assert counts["requests"] == 6 and counts["kept"] == 3
    # Too few good answers: the cap ends it with what was kept; unanswered requests count as failed.
    kept, counts = collect(ask, seeds, PromptFilter(seeds), wanted=5, cap=7, id_prefix="gen-1", min_batch=4)
    assert len(kept) == 3 and counts["requests"] == 7 and counts["failed"] == 1


def test_generate_settings_are_checked():
    g = GenerateConfig()
    assert (g.few_shot, g.near_duplicate, g.min_words, g.max_words, g.decontaminate_ngram) == (8, 0.7, 3, 150, 13)
    assert any(p.endswith("arena_hard_v0.1.jsonl") for p in g.decontaminate)
    with pytest.raises(ValidationError, match="min_words"):
        GenerateConfig(min_words=20, max_words=10)
    with pytest.raises(ValidationError, match="not a regular expression"):
        GenerateConfig(output_regex="[A-Z")
    assert GenerateConfig(output_regex=E2E_REGEX).output_regex == E2E_REGEX
