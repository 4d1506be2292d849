from generator.prompting import (
    END_TOKEN,
    KEYWORD_TOKEN,
    STORY_TOKEN,
    TITLE_TOKEN,
    build_prompt,
    format_training_example,
    format_unconditional,
    parse_generation,
)


def test_prompt_is_prefix_of_training_example() -> None:
    example = format_training_example("The Fox", "Once a fox slept.", ["fox", "moon"])
    assert example.startswith(build_prompt(["fox", "moon"], title="The Fox"))
    assert example.startswith(build_prompt(["fox", "moon"]))
    assert example.endswith(END_TOKEN)


def test_prompt_without_title_asks_for_one() -> None:
    assert build_prompt(["dragon"]) == f"{KEYWORD_TOKEN} dragon{TITLE_TOKEN}"


def test_keywords_are_cleaned() -> None:
    prompt = build_prompt([" Dragon ", "dragon", "", f"moon{STORY_TOKEN}", "a, b"])
    assert prompt == f"{KEYWORD_TOKEN} dragon, moon, a b{TITLE_TOKEN}"


def test_parse_generation_with_generated_title() -> None:
    parsed = parse_generation(f" The Sleepy Owl{STORY_TOKEN} The owl slept.{END_TOKEN} junk")
    assert parsed.title == "The Sleepy Owl"
    assert parsed.text == "The owl slept."
    assert parsed.finished


def test_parse_generation_cut_off_with_given_title() -> None:
    parsed = parse_generation(" The owl", title="Owl")
    assert (parsed.title, parsed.text, parsed.finished) == ("Owl", "The owl", False)


def test_unconditional_format() -> None:
    assert format_unconditional(" hi ") == f"{STORY_TOKEN} hi{END_TOKEN}"
