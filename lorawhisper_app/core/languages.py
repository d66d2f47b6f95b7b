"""Language codes and names: Whisper's own table plus languages Whisper has no token for."""

from __future__ import annotations

import re

from .whisper_languages import NAME_ALIASES, WHISPER_LANGUAGES

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


def _display(name: str) -> str:
    return " ".join(word.capitalize() for word in name.split())


def whisper_languages() -> dict[str, str]:
    """Whisper's language codes (in token order) with capitalised English names."""
    return {code: _display(name) for code, name in WHISPER_LANGUAGES.items()}


def is_whisper_language(code: str) -> bool:
    """True when Whisper has a language token for `code`."""
    return code in WHISPER_LANGUAGES


def language_name(code: str) -> str:
    """The English name of `code`; the code itself when it is unknown."""
    if code in WHISPER_LANGUAGES:
        return _display(WHISPER_LANGUAGES[code])
    return EXTRA_LANGUAGES.get(code, code)


def _codes_by_name() -> dict[str, str]:
    names = {name: code for code, name in WHISPER_LANGUAGES.items()}
    names.update(NAME_ALIASES)  # "burmese", "mandarin", ...
    names.update({name.lower(): code for code, name in EXTRA_LANGUAGES.items()})
    return names


def normalize_language_code(text: str) -> str:
    """A language code from a code or an English name, case-insensitively.

    Known codes and names come first ("Swahili" -> "sw", "Lao" -> "lo"); any other
    2-3 letter code is taken as a new language. Raises ValueError otherwise.
    """
    key = " ".join(text.split()).lower()
    if key in WHISPER_LANGUAGES or key in EXTRA_LANGUAGES:
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
