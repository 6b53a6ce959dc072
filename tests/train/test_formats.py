"""Curated rows → TRL rows: conversational pairs as written today, plain-string pairs of earlier releases, base
models' completion template, and bad rows named."""
import pytest

from arena_ray.errors import InputError
from arena_ray.train.formats import preference_messages, rows_for

TEMPLATE = "Q: {instruction}\nA:"


def test_conversational_pairs_pass_through_for_chat_models_and_become_text_for_base_models():
    row = {**preference_messages("Why?", "Because.", "No."), "battle_id": "b"}
    assert rows_for("dpo", [row], "f") == [{"prompt": [{"role": "user", "content": "Why?"}],
                                           "chosen": [{"role": "assistant", "content": "Because."}],
                                           "rejected": [{"role": "assistant", "content": "No."}]}]
    history = {**row, "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]}
    assert rows_for("rm", [history], "f")[0]["prompt"] == history["prompt"]  # the whole prompt is kept
    assert rows_for("dpo", [row], "f", TEMPLATE) == [{"prompt": "Q: Why?\nA:", "chosen": " Because.",
                                                     "rejected": " No."}]


def test_plain_string_pairs_of_earlier_releases_are_read_alike():
    old = {"prompt": "Why?", "chosen": "Because.", "rejected": "No."}
    assert rows_for("dpo", [old], "f") == rows_for("dpo", [preference_messages("Why?", "Because.", "No.")], "f")


@pytest.mark.parametrize("row, field", [
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "prompt"),
    ({"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}, "chosen"),
    ({"prompt": "q", "chosen": "a", "rejected": None}, "rejected"),
])
def test_bad_rows_name_the_row_and_field(row, field):
    with pytest.raises(InputError, match=rf"dpo.parquet\[row 0\]: field '{field}'"):
        rows_for("dpo", [row], "dpo.parquet")


def test_braces_in_instructions_and_templates_are_text():
    row = preference_messages("Fill {name} in {{x}}", "a {b}", "c")
    out = rows_for("dpo", [row], "f", "Q ({lang}): {instruction}\nA:")
    assert out[0]["prompt"] == "Q ({lang}): Fill {name} in {{x}}\nA:" and out[0]["chosen"] == " a {b}"
