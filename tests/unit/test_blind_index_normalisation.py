"""Normalisation of the blind index (decision 0070): a name written with or without its
accents, in any case, with any spacing or punctuation between its words, and its words
in any order or field, gives the same material; another birth date, another word or
another document never does."""

from __future__ import annotations

import unicodedata
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from store.blind_index import document_material, name_material, normalise

ACCENTS = "\u0301\u0300\u0302\u0308\u030c\u0326\u0327\u0328\u0306\u030a"
words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
                 min_size=1, max_size=4)
separators = st.lists(st.sampled_from([" ", "  ", "\t", "-", " - ", "'", ". ", "\u00a0"]),
                      min_size=4, max_size=4)
births = st.dates(min_value=date(1940, 1, 1), max_value=date(2025, 12, 31))


def _written_otherwise(word: str, accents: list[int], upper: list[bool]) -> str:
    """The word with combining accents on some letters and some letters upper case."""
    out = []
    for i, c in enumerate(word):
        c = c.upper() if upper[i % len(upper)] else c
        out.append(c + (ACCENTS[accents[i % len(accents)] % len(ACCENTS)]
                        if accents[i % len(accents)] % 3 == 0 else ""))
    return unicodedata.normalize("NFC", "".join(out))


@given(words, words, births, separators, st.randoms(use_true_random=False),
       st.lists(st.integers(0, 30), min_size=1, max_size=5),
       st.lists(st.booleans(), min_size=1, max_size=5))
def test_accents_case_spacing_and_order_do_not_matter(given_words, family_words, born, seps,
                                                      rnd, accents, upper):
    plain = name_material(" ".join(given_words), " ".join(family_words), born)
    everything = [_written_otherwise(w, accents, upper) for w in given_words + family_words]
    rnd.shuffle(everything)
    cut = rnd.randint(0, len(everything))
    given_ = seps[0].join(everything[:cut])
    family = seps[1].join(everything[cut:])
    assert name_material(f"{seps[2]}{given_}{seps[3]}", family, born) == plain


@given(words, births, births)
def test_another_birth_date_or_word_is_another_person(names, born, other_born):
    name = " ".join(names)
    if born != other_born:
        assert name_material(name, None, born) != name_material(name, None, other_born)
    assert name_material(name, "x", born) != name_material(name, None, born)
    assert name_material(name, None, None) is None  # a name alone is not indexed


def test_letters_without_a_decomposition_are_folded():
    assert normalise("Łukasz ØSTERGÅRD-Đorđević  Straße") == "lukasz ostergard dordevic strasse"
    assert normalise("İSMAİL") == "ismail"
    assert name_material("Ștefania", "Ţurcanu", date(1990, 1, 2)) == name_material(
        "stefania", "TURCANU", date(1990, 1, 2))


@given(st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=1, max_size=12),
       st.sampled_from([" ", "-", "/", ".", ""]))
def test_a_document_number_keeps_letters_and_digits_bound_to_its_country(number, sep):
    written = sep.join(number[i:i + 3] for i in range(0, len(number), 3)).lower()
    assert document_material("md", written) == document_material("MD", number)
    assert document_material("RO", number) != document_material("MD", number)
    assert document_material("MD", " - ") is None
