"""Self-instruction creation, the pure part (Self-Rewarding LMs, after Self-Instruct): the
few-shot prompt that asks a model for a new task, reading one task out of its answer, and the filters a
generated prompt must pass before it is kept. No ray, vllm or torch.

The filters are Self-Instruct's, with its ROUGE-L < 0.7 novelty test replaced by MinHash (datasketch) estimated
Jaccard similarity of word sets, which scales to every earlier prompt: a prompt is refused as
  language               not mostly Latin letters, or not starting with a Latin letter or a digit (stdlib
                         unicodedata only: Self-Instruct's "starts with punctuation / a non-ASCII character")
  too_short / too_long   fewer than `min_words` or more than `max_words` words (Self-Instruct keeps 4..150)
  keyword                a word a text-only model cannot serve (image, file, draw, ...: Self-Instruct's list),
                         or Self-Instruct's over-produced "Write a program" opening
  contaminated           an evaluation prompt shares a word `ngram` with it (GPT-3's 13-gram test), or is a
                         near duplicate of it
  duplicate              the same words (case, spacing and punctuation aside) as a seed or an earlier prompt
  near_duplicate         estimated Jaccard >= `near_duplicate` with a seed or an earlier prompt (MinHash LSH)
checked in that order, so each refusal is charged to the first filter that refused it.
"""
from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Sequence

from arena_ray.data.clean import SCHEME, shingles
from arena_ray.data.ingest import load_instructions
from arena_ray.data.testsets import ngrams
from arena_ray.records import ChatMessage, Instruction

SEED_TASKS = "../shared/data/instructions/self_instruct_seed_tasks.jsonl"
# Self-Instruct's blacklist (self_instruct/bootstrap_instructions.py): tasks a text-only model cannot do.
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
REASONS = ("too_short", "too_long", "language", "keyword", "contaminated", "duplicate", "near_duplicate")

_WORD = re.compile(r"\w+")


def load_seed_tasks(path: str = SEED_TASKS) -> list[Instruction]:
    """Self-Instruct's 175 seed tasks (or any instruction file) as Instructions: instruction and input joined."""
    return load_instructions(path)


# --- the generation prompt

PREAMBLE = ("Come up with a new task that a user might ask an AI assistant. Here are some examples of tasks:")
REQUEST = ("Write task {n}: one new task, different from the ones above, self-contained (include any text it "
           "is about). Write the task only, not its answer.")


def few_shot_messages(examples: Sequence[Instruction], k: int = 8, seed: int | str = 0,
                      max_chars: Optional[int] = None) -> tuple[tuple[ChatMessage, ...], tuple[str, ...]]:
    """The user message asking for task k+1 after k examples sampled from `examples` (random.Random(seed): the
    same seed gives the same prompt), numbered `Task 1:` .. `Task k:`; and the examples' ids. Examples longer
    than `max_chars` are not shown."""
    pool = [e for e in examples if max_chars is None or len(e.text) <= max_chars]
    chosen = random.Random(seed).sample(pool, min(k, len(pool)))
    lines = [PREAMBLE, ""]
    lines += [f"Task {i}: {e.text.strip()}" for i, e in enumerate(chosen, 1)]
    n = len(chosen) + 1
    lines += ["", REQUEST.format(n=n), f"Task {n}:"]
    return (ChatMessage("user", "\n".join(lines)),), tuple(e.instruction_id for e in chosen)


# --- reading the model's answer

_TASK_MARK = re.compile(r"^[ \t]*(?:\*\*)?(?:new[ \t]+)?task[ \t]*#?\d+[ \t]*(?:\*\*)?[ \t]*[:.)-][ \t]*(?:\*\*)?[ \t]*",
                        re.I | re.M)
_NUMBER_MARK = re.compile(r"^[ \t]*\d+[ \t]*[.)][ \t]+", re.M)
_STOP = re.compile(r"^[ \t]*(?:\*\*)?(?:answer|output|response|solution|example (?:answer|output))[ \t]*(?:\*\*)?[ \t]*:",
                   re.I | re.M)
_PREFIX = re.compile(r"^(?:(?:new[ \t]+)?(?:task|instruction|prompt|question)[ \t]*:[ \t]*)+", re.I)
_PREAMBLE_LINE = re.compile(r"^[^\n]*\b(?:task|here|sure)\b[^\n]*:[ \t]*\n", re.I)
_QUOTES = ('"', "'", "“", "”", "`")


def parse_generated(text: str) -> Optional[str]:
    """The one task in a model's answer to few_shot_messages, or None when there is none: the text before a first
    `Task N:` marker (the model wrote the task, then numbered on), else after that marker up to the next one (else after a leading `N.` up to the next numbered line; else after a chatty
    `Here is a new task:` line), cut before an `Answer:`/`Output:` line, without `Task:`/`Instruction:` prefixes
    or wrapping quotes."""
    body = text.replace("\r\n", "\n")
    marks = list(_TASK_MARK.finditer(body))
    head = body[:marks[0].start()].strip() if marks else ""
    if head and not head.endswith(":"):  # the task came first, then the model went on numbering
        body = head
    elif marks:
        end = marks[1].start() if len(marks) > 1 else len(body)
        body = body[marks[0].end():end]
    elif (first := _NUMBER_MARK.match(body)) is not None:
        nxt = _NUMBER_MARK.search(body, first.end())
        body = body[first.end():nxt.start() if nxt else len(body)]
    else:
        body = _PREAMBLE_LINE.sub("", body.lstrip(), count=1)
    stop = _STOP.search(body)
    if stop is not None:
        body = body[:stop.start()]
    body = _PREFIX.sub("", body.strip()).strip()
    while len(body) >= 2 and body[0] in _QUOTES and body[-1] in _QUOTES:
        body = body[1:-1].strip()
    return body or None


# --- the filters

def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def latin_share(text: str) -> float:
    """Share of the letters that are Latin (unicodedata names them LATIN ...); 0 for a text without letters."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(unicodedata.name(c, "").startswith("LATIN") for c in letters) / len(letters)


def latin_text(text: str, min_share: float = 0.9) -> bool:
    """Starts with a Latin letter or an ASCII digit (not punctuation, not another script) and at least `min_share`
    of its letters are Latin. A dependency-free stand-in for "written in English": it refuses other scripts and
    symbol soup, and lets Latin-script languages through (a language identifier would need a model)."""
    s = text.lstrip()
    if not s or not (s[0].isdigit() and s[0].isascii() or s[0].isalpha() and latin_share(s[0]) == 1.0):
        return False
    return latin_share(s) >= min_share


_BLACKLIST = re.compile(r"\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in BLACKLIST) + r")\b", re.I)


def blacklisted(text: str) -> Optional[str]:
    """The blacklisted word in `text` (whole words, any case), or "Write a program"; None when clean."""
    if text.lstrip().lower().startswith("write a program"):
        return "write a program"
    m = _BLACKLIST.search(text)
    return m.group(0).lower() if m else None


@dataclass(frozen=True)
class Decision:
    reason: Optional[str]     # None: kept; else one of REASONS
    nearest_id: str = ""      # the most similar seed, earlier or evaluation prompt found (LSH candidates)
    similarity: float = 0.0   # its estimated Jaccard similarity
    detail: str = ""


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int):
    """datasketch draws a MinHash's permutations from its seed on every construction; drawn once here, the
    signatures are the same (those of clean.minhash)."""
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations


@lru_cache(maxsize=8)
def _lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's bands x rows for the threshold (it integrates for them on every construction)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


class PromptFilter:
    """Self-Instruct's filters over a growing pool: `references` (seed tasks, prompts kept earlier) and every
    prompt `add` keeps are the pool new prompts must differ from; `eval_prompts` must not leak into it.

    `add(text)` returns None (kept, and added to the pool) or the refusal reason; `counts` tallies both
    ("kept" and each reason); `last` is the latest Decision."""

    def __init__(self, references: Sequence[Instruction] = (), eval_prompts: Sequence[Instruction] = (), *,
                 near_duplicate: float = 0.7, min_words: int = 3, max_words: int = 150, ngram: int = 13,
                 num_perm: int = 128, min_latin: float = 0.9, seed: int = 1):
        from datasketch import MinHashLSH

        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) is above max_words ({max_words})")
        self.near_duplicate, self.min_words, self.max_words = near_duplicate, min_words, max_words
        self.ngram, self.num_perm, self.min_latin, self.seed = ngram, num_perm, min_latin, seed
        self.counts: dict[str, int] = {"kept": 0, **{r: 0 for r in REASONS}}
        self.last = Decision(None)
        params = _lsh_params(near_duplicate, num_perm)
        self._pool = MinHashLSH(threshold=near_duplicate, num_perm=num_perm, params=params)
        self._eval = MinHashLSH(threshold=near_duplicate, num_perm=num_perm, params=params)
        self._sketches: dict[str, object] = {}
        self._exact: dict[str, str] = {}
        self._eval_exact: dict[str, str] = {}
        self._eval_grams: dict[tuple[str, ...], str] = {}
        self._n = 0
        for inst in eval_prompts:
            for text in inst.user_turns:
                self._index_eval(inst.instruction_id, text)
        for inst in references:
            self.reference(inst.instruction_id, inst.text)

    def _sketch(self, text: str):
        from datasketch import LeanMinHash, MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed, permutations=_permutations(self.num_perm, self.seed),
                    scheme=SCHEME)
        m.update_batch(list(shingles(text, 1)))
        return LeanMinHash(m)

    def _insert(self, lsh, rid: str, text: str) -> None:
        self._n += 1
        handle = str(self._n)
        sketch = self._sketch(text)
        self._sketches[handle] = (rid, sketch)
        lsh.insert(handle, sketch)

    def _index_eval(self, rid: str, text: str) -> None:
        self._eval_exact.setdefault(" ".join(words(text)), rid)
        for gram in ngrams(text, self.ngram):
            if len(gram) == self.ngram:  # a text shorter than n words has no n-gram (the near-duplicate test has it)
                self._eval_grams.setdefault(gram, rid)
        self._insert(self._eval, rid, text)

    def reference(self, rid: str, text: str) -> None:
        """Add a prompt to the pool without filtering it (a seed, a prompt kept by an earlier iteration); a
        prompt with an input after a blank line is also known by its instruction alone."""
        parts = {text, text.split("\n\n", 1)[0]}
        for part in parts:
            if words(part):
                self._exact.setdefault(" ".join(words(part)), rid)
                self._insert(self._pool, rid, part)

    def _nearest(self, lsh, sketch) -> tuple[str, float]:
        best = ("", 0.0)
        for handle in lsh.query(sketch):
            rid, other = self._sketches[handle]
            j = sketch.jaccard(other)
            if j > best[1]:
                best = (rid, j)
        return best

    def check(self, text: str) -> Decision:
        """The decision on `text` without keeping it."""
        if not latin_text(text, self.min_latin):  # first: words are not counted by spaces in every script
            return Decision("language", detail=f"{latin_share(text):.2f} Latin letters")
        ws = words(text)
        if len(ws) < self.min_words:
            return Decision("too_short", detail=f"{len(ws)} words < {self.min_words}")
        if len(ws) > self.max_words:
            return Decision("too_long", detail=f"{len(ws)} words > {self.max_words}")
        if (word := blacklisted(text)) is not None:
            return Decision("keyword", detail=word)
        key = " ".join(ws)
        if key in self._eval_exact:
            return Decision("contaminated", self._eval_exact[key], 1.0, "same words")
        for gram in ngrams(text, self.ngram):
            if gram in self._eval_grams:
                return Decision("contaminated", self._eval_grams[gram], 0.0, f"shares a {self.ngram}-gram")
        sketch = self._sketch(text)
        rid, j = self._nearest(self._eval, sketch)
        if j >= self.near_duplicate:
            return Decision("contaminated", rid, j, f"~{j:.2f} Jaccard")
        if key in self._exact:
            return Decision("duplicate", self._exact[key], 1.0)
        rid, j = self._nearest(self._pool, sketch)
        if j >= self.near_duplicate:
            return Decision("near_duplicate", rid, j, f"~{j:.2f} Jaccard")
        return Decision(None, rid, j)

    def add(self, text: str, instruction_id: Optional[str] = None) -> Optional[str]:
        """Keep `text` (it joins the pool) or return why not."""
        self.last = decision = self.check(text)
        self.counts[decision.reason or "kept"] += 1
        if decision.reason is None:
            self.reference(instruction_id or f"kept-{self.counts['kept']}", text)
        return decision.reason


# --- a round of generation: ask, read, filter, until enough are kept

@dataclass(frozen=True)
class Candidate:
    """One generation request: its key (`c<k>`), the few-shot prompt and the examples it shows."""

    key: str
    index: int
    messages: tuple[ChatMessage, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Kept:
    """A generated prompt that passed the filters, with where it came from."""

    instruction_id: str
    text: str
    candidate: str
    examples: tuple[str, ...]
    nearest_id: str
    similarity: float


def candidate(pool: Sequence[Instruction], index: int, *, k: int, seed: str, max_chars: Optional[int]) -> Candidate:
    """Request `index` of a run: its examples are drawn with random.Random(f"{seed}/{index}")."""
    messages, examples = few_shot_messages(pool, k, f"{seed}/{index}", max_chars)
    return Candidate(f"c{index}", index, messages, examples)


def collect(ask: Callable[[list[Candidate]], dict[str, str]], pool: Sequence[Instruction], keep: PromptFilter, *,
            wanted: int, cap: int, id_prefix: str, k: int = 8, seed: str = "0", max_chars: Optional[int] = None,
            min_batch: int = 8) -> tuple[list[Kept], dict[str, int]]:
    """Ask for candidates in rounds (`ask`: candidates → key → generated text; a key it lacks failed) until
    `wanted` prompts are kept or `cap` requests were made. Answers are read in request order whatever order they
    came in, so the same answers always keep the same prompts (a resumed run decides as the first did). Returns
    the kept prompts (ids `<id_prefix>-<n>`) and the counts: requests, failed (no answer), unparsed, and the
    filter's counts."""
    kept: list[Kept] = []
    counts = {"requests": 0, "failed": 0, "unparsed": 0}
    while len(kept) < wanted and counts["requests"] < cap:
        size = min(cap - counts["requests"], max(2 * (wanted - len(kept)), min_batch))
        batch = [candidate(pool, counts["requests"] + i, k=k, seed=seed, max_chars=max_chars) for i in range(size)]
        counts["requests"] += size
        answers = ask(batch)
        for c in batch:
            if len(kept) >= wanted:
                break
            if c.key not in answers:
                counts["failed"] += 1
                continue
            text = parse_generated(answers[c.key])
            if text is None:
                counts["unparsed"] += 1
                continue
            iid = f"{id_prefix}-{len(kept)}"
            if keep.add(text, iid) is None:
                d = keep.last
                kept.append(Kept(iid, text, c.key, c.examples, d.nearest_id, d.similarity))
    return kept, {**counts, **keep.counts}
