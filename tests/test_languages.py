import pytest
from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

from lorawhisper_app.core.languages import (
    EXTRA_LANGUAGES,
    is_whisper_language,
    language_name,
    normalize_language_code,
    whisper_languages,
)
from lorawhisper_app.core.whisper_languages import NAME_ALIASES, WHISPER_LANGUAGES


def test_whisper_table_is_transformers_own():
    """The app keeps its own copy of Whisper's tables (importing transformers' costs the window a
    second at start); they must be what the installed transformers has."""
    assert WHISPER_LANGUAGES == LANGUAGES and list(WHISPER_LANGUAGES) == list(LANGUAGES)
    assert {**{name: code for code, name in WHISPER_LANGUAGES.items()}, **NAME_ALIASES} == TO_LANGUAGE_CODE
    table = whisper_languages()
    assert list(table) == list(LANGUAGES)
    assert {name.lower() for name in table.values()} == set(LANGUAGES.values())


def test_extra_languages_are_not_in_whisper():
    assert {"rw", "lg", "ak", "ig", "zu", "xh", "om", "ti", "wo", "ny"} <= set(EXTRA_LANGUAGES)
    for code, name in EXTRA_LANGUAGES.items():
        assert not is_whisper_language(code), code
        assert name.lower() not in TO_LANGUAGE_CODE, name


@pytest.mark.parametrize(
    ("code", "name"),
    [("sw", "Swahili"), ("haw", "Hawaiian"), ("ht", "Haitian Creole"), ("rw", "Kinyarwanda"), ("lg", "Luganda"),
     ("qqq", "qqq")],
)
def test_language_name(code, name):
    assert language_name(code) == name


def test_is_whisper_language():
    assert is_whisper_language("sw") and is_whisper_language("yue")
    assert not is_whisper_language("rw") and not is_whisper_language("Swahili")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("sw", "sw"),
        ("SW", "sw"),
        (" Swahili ", "sw"),
        ("swahili", "sw"),
        ("Haitian  creole", "ht"),
        ("Burmese", "my"),  # one of Whisper's aliases
        ("Lao", "lo"),  # a name, though it looks like a code
        ("kinyarwanda", "rw"),
        ("rw", "rw"),
        ("luo", "luo"),
        ("xyz", "xyz"),  # any other 2-3 letter code is a new language
    ],
)
def test_normalize_language_code(text, code):
    assert normalize_language_code(text) == code


@pytest.mark.parametrize("text", ["", "s", "abcd", "sw1", "Klingon", "en-US"])
def test_normalize_language_code_refuses(text):
    with pytest.raises(ValueError, match="unknown language") as raised:
        normalize_language_code(text)
    assert repr(text) in str(raised.value)
