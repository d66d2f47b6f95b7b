"""Language codes and names: Whisper's own table plus languages Whisper has no token for."""

from __future__ import annotations

import re
from functools import cache

# Languages this app serves that have no Whisper language token (ISO 639-1, else 639-3).
EXTRA_LANGUAGES: dict[str, str] = {
    "ak": "Akan",
    "bm": "Bambara",
    "ee": "Ewe",
    "ff": "Fula",
    "ig": "Igbo",
    "ki": "Kikuyu",
    "kab": "Kabyle",
    "lg": "Luganda",
    "luo": "Luo",
    "ny": "Chichewa",
    "om": "Oromo",
    "rn": "Kirundi",
    "rw": "Kinyarwanda",
    "st": "Sesotho",
    "ti": "Tigrinya",
    "tn": "Setswana",
    "ts": "Xitsonga",
    "tw": "Twi",
    "wo": "Wolof",
    "xh": "Xhosa",
    "zu": "Zulu",
    "ay": "Aymara",
    "gn": "Guarani",
    "qu": "Quechua",
    "ga": "Irish",
    "ky": "Kyrgyz",
    "ug": "Uyghur",
}

_CODE = re.compile(r"[a-z]{2,3}")


@cache
def _whisper_tables() -> tuple[dict[str, str], dict[str, str]]:
    """Whisper's code -> name table and its name aliases, imported on first use: importing
    transformers costs about a second, which the app's window should not wait for."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    return LANGUAGES, TO_LANGUAGE_CODE


def _display(name: str) -> str:
    return " ".join(word.capitalize() for word in name.split())


def whisper_languages() -> dict[str, str]:
    """Whisper's language codes (in token order) with capitalised English names."""
    return {code: _display(name) for code, name in _whisper_tables()[0].items()}


def is_whisper_language(code: str) -> bool:
    """True when Whisper has a language token for `code`."""
    return code in _whisper_tables()[0]


def language_name(code: str) -> str:
    """The English name of `code`; the code itself when it is unknown."""
    languages = _whisper_tables()[0]
    if code in languages:
        return _display(languages[code])
    return EXTRA_LANGUAGES.get(code, code)


def _codes_by_name() -> dict[str, str]:
    languages, aliases = _whisper_tables()
    names = {name: code for code, name in languages.items()}
    names.update(aliases)  # Whisper's aliases: "burmese", "mandarin", ...
    names.update({name.lower(): code for code, name in EXTRA_LANGUAGES.items()})
    return names


def normalize_language_code(text: str) -> str:
    """A language code from a code or an English name, case-insensitively.

    Known codes and names come first ("Swahili" -> "sw", "Lao" -> "lo"); any other
    2-3 letter code is taken as a new language. Raises ValueError otherwise.
    """
    key = " ".join(text.split()).lower()
    if key in _whisper_tables()[0] or key in EXTRA_LANGUAGES:
        return key
    by_name = _codes_by_name()
    if key in by_name:
        return by_name[key]
    if _CODE.fullmatch(key):
        return key
    raise ValueError(
        f"unknown language {text!r}: give an ISO 639 code of 2-3 letters (e.g. 'sw') "
        "or an English language name (e.g. 'Swahili')"
    )
