import random
import unicodedata

import pytest

from lorawhisper_app.core.metrics import (
    ErrorCounts,
    char_errors,
    corpus_rates,
    edit_distance,
    normalize_text,
    word_errors,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  many \t spaces\n here ", "many spaces here"),
        ("Don't say ‘it’s’", "dont say its"),
        ("well-known — fact", "well known fact"),
        ("“Quoted” «guillemets» (parens)", "quoted guillemets parens"),
        ("$5 + 3 = 8 ©", "5 3 8"),
        ("Ọ̀gá ń BỌ̀!", "ọ̀gá ń bọ̀"),
        ("Grüße aus MÜNCHEN.", "grüsse aus münchen"),
        ("...", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_normalize_composed_and_decomposed_agree():
    word = "Ọ̀kọ̀"
    assert normalize_text(unicodedata.normalize("NFD", word)) == normalize_text(unicodedata.normalize("NFC", word))
    assert normalize_text(word) == unicodedata.normalize("NFC", "ọ̀kọ̀")


def _reference_distance(a, b):
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [("kitten", "sitting", 3), ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("flaw", "lawn", 2), ("abc", "abc", 0)],
)
def test_edit_distance_known(ref, hyp, expected):
    assert edit_distance(ref, hyp) == expected
    assert edit_distance(hyp, ref) == expected


def test_edit_distance_matches_full_table():
    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randrange(12))]
        b = [rng.choice("abcd") for _ in range(rng.randrange(12))]
        assert edit_distance(a, b) == _reference_distance(a, b)


def test_edit_distance_on_word_lists():
    assert edit_distance("the cat sat".split(), "the bat sat on".split()) == 2


@pytest.mark.parametrize(
    ("ref", "hyp", "errors", "ref_len"),
    [
        ("the cat sat", "the bat sat", 1, 3),  # substitution
        ("the cat", "the black cat", 1, 2),  # insertion
        ("the cat sat down", "the cat down", 1, 4),  # deletion
        ("a b c", "x a c d e", 4, 3),  # deletion of b, insertions of x, d, e
        ("", "", 0, 0),
        ("", "two words", 2, 0),
        ("two words", "", 2, 2),
        ("Hello, World!", "hello world", 0, 2),  # case and punctuation do not count
        ("ọkọ", "oko", 1, 1),  # diacritics do
    ],
)
def test_word_errors(ref, hyp, errors, ref_len):
    assert word_errors(ref, hyp) == ErrorCounts(errors, ref_len)


@pytest.mark.parametrize(
    ("ref", "hyp", "errors", "ref_len"),
    [
        ("ọkọ", "oko", 2, 3),
        ("ab cd", "abcd", 1, 5),  # the space is a character
        ("Ab, cd!", "ab cd", 0, 5),
        ("ọ̀", "ọ́", 1, 2),  # wrong tone: one edit of the combining mark
        ("", "", 0, 0),
    ],
)
def test_char_errors(ref, hyp, errors, ref_len):
    assert char_errors(ref, hyp) == ErrorCounts(errors, ref_len)


def test_error_counts_add_and_rate():
    assert ErrorCounts(1, 4) + ErrorCounts(2, 6) == ErrorCounts(3, 10)
    assert ErrorCounts(3, 10).rate == pytest.approx(0.3)
    assert ErrorCounts(5, 2).rate == pytest.approx(2.5)
    assert ErrorCounts(0, 0).rate == 0.0
    assert ErrorCounts(4, 0).rate == 1.0


def test_corpus_rates_sum_counts_rather_than_average_rates():
    pairs = [("a b c d", "a b c d"), ("x", "y")]
    wer, cer = corpus_rates(pairs)
    assert wer == pytest.approx(1 / 5)  # mean of per-utterance rates would be 0.5
    assert cer == pytest.approx(1 / 8)  # "a b c d" is 7 characters, "x" 1
    assert wer != pytest.approx(sum(word_errors(r, h).rate for r, h in pairs) / len(pairs))


def test_corpus_rates_empty():
    assert corpus_rates([]) == (0.0, 0.0)
