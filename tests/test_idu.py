"""Parcel identifiers: every form planners type, every refusal with its message, round trips."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.errors import InputError, ParcelIdError
from geo.idu import ParcelId, is_idu, normalise_idu, normalise_series, parse_idu, parse_many

LIBERCOURT = "62907"


# --------------------------------------------------------------------------------------------
# Accepted forms


@pytest.mark.parametrize(
    "text",
    [
        "62907000AB0685",
        "62907000ab0685",
        "  62907000AB0685\t",
        "62907 000 AB 0685",
        "62907-000-AB-0685",
        "62907 000 AB 685",  # separated parts may be unpadded
    ],
)
def test_full_idu_forms(text):
    assert normalise_idu(text) == "62907000AB0685"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("AB 685", "62907000AB0685"),
        ("AB0685", "62907000AB0685"),
        ("ab685", "62907000AB0685"),
        ("AB-685", "62907000AB0685"),
        ("AB/685", "62907000AB0685"),
        ("AB.685", "62907000AB0685"),
        ("  AB   685 ", "62907000AB0685"),
        ("000 AB 0685", "62907000AB0685"),
        ("000AB0685", "62907000AB0685"),
        ("0A 12", "629070000A0012"),
        ("0a12", "629070000A0012"),
        ("A 12", "629070000A0012"),
        ("A12", "629070000A0012"),
        ("a-1", "629070000A0001"),
        ("123 AB 7", "62907123AB0007"),  # a prefixe in the text wins over the default
        ("01 12", "62907000010012"),  # numeric section (Alsace-Moselle style), separated
        ("A1 12", "62907000A10012"),
    ],
)
def test_short_forms_with_commune(text, expected):
    assert normalise_idu(text, code_insee=LIBERCOURT) == expected


def test_short_form_takes_default_prefixe():
    assert normalise_idu("AB 685", code_insee=LIBERCOURT, prefixe="123") == "62907123AB0685"
    assert normalise_idu("AB 685", code_insee=LIBERCOURT, prefixe="5") == "62907005AB0685"


def test_corsica():
    p = parse_idu("2A004000AB0012")
    assert (p.code_insee, p.prefixe, p.section, p.numero) == ("2A004", "000", "AB", "0012")
    assert normalise_idu("2a004000ab0012") == "2A004000AB0012"
    assert normalise_idu("AB 12", code_insee="2b033") == "2B033000AB0012"


def test_overseas_commune():
    assert normalise_idu("AB 12", code_insee="97411") == "97411000AB0012"


def test_parcel_id_fields_and_forms():
    p = parse_idu("ab 685", code_insee=LIBERCOURT)
    assert p == ParcelId("62907", "000", "AB", "0685")
    assert p.idu == str(p) == "62907000AB0685"
    assert p.label == "AB 685"
    assert parse_idu("A 12", code_insee=LIBERCOURT).label == "0A 12"
    assert parse_idu("62907123AB0007").label == "123 AB 7"


def test_parcel_id_normalises_on_construction():
    assert ParcelId("62907", "0", "a", "12").idu == "629070000A0012"
    with pytest.raises(ParcelIdError, match=r"numéro '0' nul"):
        ParcelId("62907", "000", "AB", "0")
    with pytest.raises(ParcelIdError, match=r"numero doit être du texte, pas int"):
        ParcelId("62907", "000", "AB", 12)  # type: ignore[arg-type]


def test_full_idu_of_another_commune_is_accepted():
    # code_insee only completes short forms; without `communes` any commune is fine.
    assert normalise_idu("59123000AB0012", code_insee=LIBERCOURT) == "59123000AB0012"
    assert (
        normalise_idu("59123000AB0012", code_insee=LIBERCOURT, communes=["62907", "59123"])
        == "59123000AB0012"
    )


def test_sections_padded_or_not():
    for known in (["A", "AB"], ["0A", "ab"], {" a ", "AB"}):
        assert normalise_idu("A 12", code_insee=LIBERCOURT, sections=known) == "629070000A0012"
        assert normalise_idu("0A12", code_insee=LIBERCOURT, sections=known) == "629070000A0012"


def test_sections_only_checked_for_the_given_commune():
    # The sections belong to code_insee's cadastre; another commune's parcel is not tested on them.
    assert normalise_idu("59123000ZZ0001", code_insee=LIBERCOURT, sections=["AB"]) == "59123000ZZ0001"


def test_letter_o_section_accepted_when_nothing_says_otherwise():
    assert normalise_idu("OA 12", code_insee=LIBERCOURT) == "62907000OA0012"


# --------------------------------------------------------------------------------------------
# Refusals


def test_error_is_an_input_error():
    with pytest.raises(InputError):
        parse_idu("nope")


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty(text):
    expected = r"identifiant de parcelle vide — donnez un identifiant de 14 caractères"
    with pytest.raises(ParcelIdError, match=expected):
        parse_idu(text)  # type: ignore[arg-type]


def test_wrong_length_exact_message():
    with pytest.raises(ParcelIdError) as info:
        parse_idu("62907AB0685")
    assert info.value.message == (
        "parcelle '62907AB0685' : 11 caractères au lieu de 14 "
        "(INSEE 5 + prefixe 3 + section 2 + numéro 4), ex. 62907000AB0685"
    )
    assert info.value.fix == "le préfixe semble manquer : 62907000AB0685"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("629070000AB0685", r"'629070000AB0685' : 15 caractères au lieu de 14"),
        ("62907 AB 06851", r": 12 caractères \(sans séparateurs\) au lieu de 14"),
        ("2A004AB0012", r": 11 caractères.*préfixe semble manquer : 2A004000AB0012"),
        ("bad", r"'bad' : 3 caractères.*comme 'AB 685'"),
    ],
)
def test_wrong_length(text, fragment):
    with pytest.raises(ParcelIdError, match=fragment):
        parse_idu(text, code_insee=LIBERCOURT)


@pytest.mark.parametrize(
    "text, position, fixed",
    [
        ("62907OOOAB0685", 6, "62907000AB0685"),
        ("629O7000AB0685", 4, "62907000AB0685"),
        ("62907000AB0O85", 12, "62907000AB0085"),
        ("62907 0OO AB 0685", 8, "62907000AB0685"),  # position as typed, spaces counted
        ("2AOO4000AB0012", 3, "2A004000AB0012"),
    ],
)
def test_letter_o_for_digit_zero_in_full_idu(text, position, fixed):
    with pytest.raises(
        ParcelIdError,
        match=rf"lettre 'O' en position {position}, à la place du chiffre '0' — tapez le chiffre zéro : "
        rf"{fixed}",
    ):
        parse_idu(text)


def test_letter_o_in_short_numero():
    with pytest.raises(ParcelIdError, match=r"numéro 'O685' : lettre 'O'.*tapez 0685"):
        parse_idu("AB O685", code_insee=LIBERCOURT)
    with pytest.raises(ParcelIdError, match=r"numéro '6O' : lettre 'O'"):
        parse_idu("ab6o", code_insee=LIBERCOURT)


def test_letter_o_in_commune_option():
    with pytest.raises(ParcelIdError, match=r"code_insee: code INSEE '629O7' : lettre 'O'.*tapez 62907"):
        parse_idu("AB 12", code_insee="629O7")


@pytest.mark.parametrize("typed", ["OA 12", "OA12", "oa 12"])
def test_letter_o_section_when_cadastre_has_digit_zero(typed):
    with pytest.raises(
        ParcelIdError,
        match=r"section 'OA' n'existe pas dans le cadastre de 62907, "
        r"qui a une section '0A' avec le chiffre '0' "
        r"— tapez 0A 12",
    ):
        parse_idu(typed, code_insee=LIBERCOURT, sections=["A", "AB"])


def test_digit_zero_section_when_cadastre_has_letter_o():
    with pytest.raises(ParcelIdError, match=r"qui a une section 'OA' avec la lettre 'O' — tapez OA 12"):
        parse_idu("0A 12", code_insee=LIBERCOURT, sections=["OA"])


def test_letter_o_section_in_full_idu():
    with pytest.raises(ParcelIdError, match=r"section 'OA' .* qui a une section '0A'"):
        parse_idu("62907000OA0012", sections=["0A"])


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("AB 68X5", r"parcelle 'AB 68X5' : numéro '68X5' : ce n'est pas un nombre"),
        ("AB 0000", r"numéro '0000' nul : les numéros de parcelle commencent à 1"),
        ("AB 0", r"numéro '0' nul"),
        ("AB 12345", r"numéro '12345' : 5 chiffres, 4 au plus"),
        ("62907000AB068X", r"numéro '068X' : ce n'est pas un nombre"),
        ("62907000AB0000", r"numéro '0000' nul"),
    ],
)
def test_bad_numero(text, fragment):
    with pytest.raises(ParcelIdError, match=fragment):
        parse_idu(text, code_insee=LIBERCOURT)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("6290A000AB0685", r"code INSEE '6290A' invalide — attendu : 5 chiffres, ou 2A/2B"),
        ("2C004000AB0012", r"code INSEE '2C004' invalide"),
        ("62907A00AB0685", r"préfixe 'A00' : il faut 3 chiffres — le préfixe vaut 000, sauf"),
        ("62907000000685", r"section '00' vide"),
        ("62907000-0685", r": 12 caractères"),
    ],
)
def test_bad_parts_of_full_idu(text, fragment):
    with pytest.raises(ParcelIdError, match=fragment):
        parse_idu(text)


def test_short_form_without_commune():
    with pytest.raises(
        ParcelIdError,
        match=r"parcelle 'AB 685' : section et numéro sans commune "
        r"— donnez la commune : --commune 62907",
    ):
        parse_idu("AB 685")


def test_short_form_with_bad_numero_reports_numero_before_missing_commune():
    with pytest.raises(ParcelIdError, match=r"numéro '12345' : 5 chiffres"):
        parse_idu("AB 12345")


def test_bad_commune_option():
    with pytest.raises(ParcelIdError, match=r"code_insee: code INSEE '1004' invalide.*perdu.*: 01004"):
        parse_idu("AB 12", code_insee="1004")
    with pytest.raises(ParcelIdError, match=r"prefixe: préfixe '12x' : il faut 3 chiffres"):
        parse_idu("AB 12", code_insee=LIBERCOURT, prefixe="12x")


def test_unknown_commune():
    communes = ["62907", "62215", "62637", "59123", "59462", "59630"]
    with pytest.raises(
        ParcelIdError,
        match=r"la commune 19028 n'est pas l'une des communes connues "
        r"\(59123, 59462, 59630, 62215, 62637, … \(\+1 autres\)\)",
    ):
        parse_idu("19028000AB0012", communes=communes)
    expected = r"la commune 62907 n'est pas l'une des communes connues \(19028\)"
    with pytest.raises(ParcelIdError, match=expected):
        parse_idu("AB 12", code_insee=LIBERCOURT, communes=["19028"])


def test_unknown_section_lists_known_ones():
    known = ["A", "B", "C", "AB", "AC", "AD", "AE", "AF", "AG", "AH"]
    with pytest.raises(
        ParcelIdError,
        match=r"section 'ZZ' n'existe pas dans le cadastre de 62907 "
        r"\(sections connues : 0A, 0B, 0C, AB, AC, AD, AE, AF, … \(\+2 autres\)\)",
    ):
        parse_idu("ZZ 12", code_insee=LIBERCOURT, sections=known)


# --------------------------------------------------------------------------------------------
# Many ids, columns, quick check


def test_parse_many_splits_and_dedups():
    texts = ["AB 685", "62907000AB0685", "ab0685", "bad", "A 12", "bad", "", "AB O685", "0A12"]
    valid, rejected = parse_many(texts, code_insee=LIBERCOURT)
    assert [p.idu for p in valid] == ["62907000AB0685", "629070000A0012"]
    assert [t for t, _ in rejected] == ["bad", "", "AB O685"]
    messages = dict(rejected)
    assert ": 3 caractères" in messages["bad"]
    assert "vide" in messages[""]
    assert "lettre 'O'" in messages["AB O685"]


def test_parse_many_never_raises():
    valid, rejected = parse_many(["AB 12", "62907000AB0012"], code_insee="1004")
    assert valid == []
    assert all("code INSEE '1004'" in msg for _, msg in rejected)
    valid, rejected = parse_many(["AB 12", None, 12.5, float("nan")])  # type: ignore[list-item]
    assert valid == [] and len(rejected) == 3  # None and NaN are both the empty text


def test_parse_many_accepts_a_lone_string_and_generators():
    valid, rejected = parse_many("AB 12", code_insee=LIBERCOURT)
    assert [p.idu for p in valid] == ["62907000AB0012"] and rejected == []
    valid, _ = parse_many((f"AB {n}" for n in (1, 2, 1)), code_insee=LIBERCOURT)
    assert [p.numero for p in valid] == ["0001", "0002"]


def test_parse_many_with_sections_and_communes():
    valid, rejected = parse_many(
        ["A 1", "Z 1", "59123000AB0001", "19028000AB0001"],
        code_insee=LIBERCOURT,
        communes=["62907", "59123"],
        sections=["A"],
    )
    assert [p.idu for p in valid] == ["629070000A0001", "59123000AB0001"]
    assert [t for t, _ in rejected] == ["Z 1", "19028000AB0001"]


def test_normalise_series():
    s = pd.Series(["AB 685", None, "bad", float("nan"), "0a 1", "AB 685"], index=list("abcdef"), name="idu")
    out = normalise_series(s, code_insee=LIBERCOURT)
    assert out.name == "idu" and list(out.index) == list("abcdef")
    assert str(out.dtype) == "string"
    assert out.isna().tolist() == [False, True, True, True, False, False]
    assert out["b"] is pd.NA
    assert out.dropna().tolist() == ["62907000AB0685", "629070000A0001", "62907000AB0685"]


def test_normalise_series_refuses_a_bad_option():
    with pytest.raises(ParcelIdError, match=r"code_insee"):
        normalise_series(pd.Series(["AB 1"]), code_insee="629")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("62907000AB0685", True),
        ("2A004000AB0012", True),
        ("629070000A0012", True),
        ("62907000ab0685", False),
        ("62907 000 AB 0685", False),
        ("62907000000685", False),
        ("62907000AB0000", False),
        ("62907AB0685", False),
        ("62907OOOAB0685", False),
        (None, False),
        (62907000, False),
    ],
)
def test_is_idu(text, expected):
    assert is_idu(text) is expected


# --------------------------------------------------------------------------------------------
# Properties

_DIGITS = "0123456789"
_SECTION_CHARS = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

insee_codes = st.one_of(
    st.text(_DIGITS, min_size=5, max_size=5),
    st.builds(lambda c, d: f"2{c}{d}", st.sampled_from("AB"), st.text(_DIGITS, min_size=3, max_size=3)),
)
parcel_ids = st.builds(
    lambda insee, prefixe, section, numero: ParcelId(insee, prefixe, section, f"{numero:04d}"),
    insee_codes,
    st.text(_DIGITS, min_size=3, max_size=3),
    st.text(_SECTION_CHARS, min_size=2, max_size=2).filter(lambda s: s != "00"),
    st.integers(1, 9999),
)


@given(parcel_ids)
def test_idu_round_trips(p):
    assert is_idu(p.idu)
    assert parse_idu(p.idu) == p
    assert parse_idu(p.idu.lower()) == p
    assert parse_idu(f" {p.code_insee} {p.prefixe} {p.section} {p.numero} ") == p


@given(parcel_ids)
def test_label_round_trips_with_commune(p):
    assert parse_idu(p.label, code_insee=p.code_insee) == p
    assert parse_idu(p.label, code_insee=p.code_insee, sections=[p.section.lstrip("0")]) == p


@given(st.lists(parcel_ids, max_size=8), st.lists(st.sampled_from(["", "x", "62907AB0685", "AB 0"])))
def test_parse_many_partitions(ids, bad):
    texts = [p.idu for p in ids] + [p.idu.lower() for p in ids] + bad
    valid, rejected = parse_many(texts)
    assert valid == list(dict.fromkeys(ids))
    assert [t for t, _ in rejected] == list(dict.fromkeys(bad))


@pytest.mark.parametrize(
    "text, code, expected",
    [
        ("91216 AC 100", None, "91216000AC0100"),  # commune + section + numéro, prefixe 000
        ("91216-AC-0100", None, "91216000AC0100"),
        ("91216000AC100", None, "91216000AC0100"),  # full id, numéro unpadded
        ("91216000A12", None, "912160000A0012"),
        ("62907000A-0685", None, "629070000A0685"),
        ("2A004 0A 12", None, "2A0040000A0012"),
        ("AC100", "91216", "91216000AC0100"),
        ("000 AC 0100", "91216", "91216000AC0100"),
        ("ac 100", "91216", "91216000AC0100"),
    ],
)
def test_notary_forms(text, code, expected):
    """Every form notaires type for 91216 AC 100 gives the same parcel."""
    assert normalise_idu(text, code_insee=code) == expected


def test_notary_forms_keep_precise_refusals():
    with pytest.raises(ParcelIdError, match=r"numéro '1OO' : lettre 'O'.*tapez 100"):
        parse_idu("91216 AC 1OO")
    with pytest.raises(ParcelIdError, match=r"préfixe semble manquer : 91216000AC0100"):
        parse_idu("91216AC0100")  # glued without prefixe: too ambiguous to guess silently
    with pytest.raises(ParcelIdError, match="n'est pas l'une des communes connues"):
        parse_idu("91216 AC 100", communes=["62907"])


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("62907 ß 12", "ß"),  # upper() gives "SS": another section
        ("62907 ı 12", "ı"),  # dotless i: upper() gives "I"
        ("62907000ıA0012", "ı"),
        ("62907 İB 12", "İ"),
        ("62907 AÉ 12", "É"),
        ("62907 Аb 12", "А"),  # Cyrillic A
        ("ß 12", "ß"),
    ],
)
def test_letters_outside_a_to_z_refused(text, letter):
    """Letters outside A–Z after NFKC are refused in French, never folded into another section."""
    with pytest.raises(ParcelIdError, match=f"lettre '{letter}' \\(U\\+[0-9A-F]{{4}}\\) hors de A–Z") as err:
        parse_idu(text, code_insee="62907")
    assert "lettres A à Z, sans accent" in str(err.value)
    with pytest.raises(ParcelIdError, match="hors de A–Z"):
        ParcelId("62907", "000", letter, "12")


def test_full_width_letters_are_the_same_section():
    """NFKC first: full-width letters and digits are the ASCII ones."""
    assert parse_idu("６２９０７ ＡＢ １２").idu == "62907000AB0012"


def test_rejected_entries_are_echoed_bounded():
    """A pasted 20 000-character entry is shown back on one bounded line, never whole."""
    _, rejected = parse_many(["9" * 20_000, "62907\x00AB 12", "62907000AB0012"])
    assert [len(text) <= 120 for text, _ in rejected] == [True, True]
    assert "caractères omis" in rejected[0][0] and rejected[1][0] == "62907\\x00AB 12"
    assert all(len(message) <= 900 and "\n" not in message for _, message in rejected)
