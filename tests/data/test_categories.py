from arena_ray.data.battles import BattleRow
from arena_ray.data.categories import category_of


def row(prompt=None, **fields):
    return BattleRow("a", "b", "tie", prompt=prompt, fields=tuple(fields.items()))


def test_fields_win_and_derived_ones_come_from_the_prompt():
    assert category_of(row(language="German"), "language") == "German"
    assert category_of(row("Wie spät ist es in Berlin, und wie wird das Wetter morgen?"), "language") == "de"
    assert category_of(row("hi", is_code=True), "coding") == "code"
    assert category_of(row("Write a Python function that reverses a list."), "coding") == "code"
    assert category_of(row("What is the capital of France?"), "coding") == "no code"
    assert category_of(row("x" * 600), "prompt_length") == "long" and category_of(row("x"), "prompt_length") == "short"
    assert category_of(row(None), "coding") is None and category_of(row("text"), "cluster") is None
    assert category_of(row("t", category="Cooking"), "category") == "Cooking"
