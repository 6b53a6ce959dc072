"""Multi-turn battles (MT-bench): each competitor answers the user's turns one after another, seeing its own
earlier answers, and the judge sees the whole conversation. Pure.

Every turn's answer is a row of the ledger's generations: the last turn's under the instruction's id (so a
conversation counts as answered exactly when it is finished), earlier turns under `<id>#turn<k>` (so a crash
mid-conversation resumes from the last answered turn)."""
from __future__ import annotations

from typing import Optional, Sequence

from arena_ray.judging.prompts import cut_answer
from arena_ray.records import ChatMessage, Instruction


def turn_key(instruction: Instruction, k: int) -> str:
    """The ledger id of the answer to turn k (0-based)."""
    last = len(instruction.user_turns) - 1
    return instruction.instruction_id if k == last else f"{instruction.instruction_id}#turn{k + 1}"


def earlier_keys(instruction: Instruction) -> list[str]:
    """The ledger ids of every turn's answer but the last."""
    return [turn_key(instruction, k) for k in range(len(instruction.user_turns) - 1)]


def history(instruction: Instruction, answers: Sequence[str]) -> tuple[ChatMessage, ...]:
    """The messages for the next turn after `answers` to the first turns: the conversation so far and the
    next user turn."""
    turns = instruction.user_turns
    msgs: list[ChatMessage] = []
    for user, answer in zip(turns, answers):
        msgs += [ChatMessage("user", user), ChatMessage("assistant", answer)]
    return (*msgs, ChatMessage("user", turns[len(answers)]))


def _numbered(texts: Sequence[str]) -> str:
    return "\n\n".join(f"[Turn {k}]\n{t}" for k, t in enumerate(texts, 1))


def judge_inputs(instruction: Instruction, answers_first: Sequence[str], answers_second: Sequence[str],
                 cut: int, use_reference: bool) -> tuple[str, str, str, Optional[str]]:
    """(question, answer shown first, answer shown second, reference) as a pairwise template takes them: one
    turn as it is; several turns numbered, each answer cut to `cut` characters."""
    refs = instruction.references if use_reference else ()
    if not instruction.turns:
        return (instruction.text, cut_answer(answers_first[0], cut), cut_answer(answers_second[0], cut),
                refs[0] if refs and refs[0].strip() else None)
    reference = _numbered([r or "(no reference for this turn)" for r in refs]) if refs else None
    return (_numbered(instruction.user_turns), _numbered([cut_answer(a, cut) for a in answers_first]),
            _numbered([cut_answer(a, cut) for a in answers_second]), reference)
