"""Each project error also derives from the built-in it specialises, so callers catch what they know."""

from __future__ import annotations

import pytest

from geo import errors, schema, settings
from geo.errors import (
    CRSError,
    DownloadError,
    InputError,
    MissingFileError,
    OrtError,
    OutputExistsError,
    ParcelIdError,
    PerimeterError,
    ValidationFailed,
    ValidationReport,
)
from geo.idu import parse_idu
from geo.io import write_text
from geo.perimeters import read_convention
from geo.sources.http import cached_download


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (InputError, ValueError),
        (CRSError, ValueError),
        (ParcelIdError, ValueError),
        (PerimeterError, ValueError),
        (ValidationFailed, ValueError),
        (MissingFileError, FileNotFoundError),
        (MissingFileError, ValueError),
        (OutputExistsError, FileExistsError),
        (DownloadError, OSError),
        (settings.SettingsError, ValueError),
    ],
)
def test_hierarchy(cls, builtin):
    assert issubclass(cls, OrtError) and issubclass(cls, builtin)


def test_every_public_error_has_a_builtin_besides_ortError():
    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, OrtError) and cls is not OrtError:
            builtins = [
                b
                for b in cls.__mro__
                if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
            ]
            assert builtins, f"{name} derives from no specific built-in exception"


def test_raised_errors_are_caught_by_their_builtin(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        read_convention(tmp_path / "absente")
    assert "dossier de convention introuvable" in str(err.value) and err.value.errno is None
    with pytest.raises(FileNotFoundError, match="convention.toml introuvable"):
        schema.read_toml(tmp_path / "convention.toml", what="convention.toml")
    with pytest.raises(ValueError, match="11 caractères"):
        parse_idu("62907AB0685")
    (tmp_path / "out.txt").write_text("déjà là")
    with pytest.raises(FileExistsError):
        write_text("x", tmp_path / "out.txt")
    monkeypatch.setattr(settings, "offline", True)
    with pytest.raises(OSError, match="offline"):
        cached_download("https://example.invalid/absent.json")
    report = ValidationReport("f.toml")
    report.add("error", "bad-type", "x = 1 n'est pas un texte")
    with pytest.raises(ValueError, match="x = 1 n'est pas un texte"):
        raise ValidationFailed(report)


def test_message_is_the_whole_line_for_oserror_subclasses():
    """OSError formats its arguments its own way: the project's one-line message must survive."""
    assert (
        str(MissingFileError("introuvable", source="a.toml", fix="vérifiez"))
        == "a.toml: introuvable — vérifiez"
    )
    assert str(DownloadError("hors ligne")) == "hors ligne"
    assert str(OutputExistsError("existe déjà")) == "existe déjà"


# --- values echoed from inputs: bounded and sanitised in one place (issue 23) ---------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda v: InputError(f"parcelle '{v}' invalide", source=v, feature=v, fix=f"retapez '{v}'"),
        lambda v: DownloadError(f"téléchargement de {v} impossible"),
        lambda v: OutputExistsError(f"{v} existe déjà"),
        lambda v: errors.OutputError(f"impossible d'écrire {v}", fix=v),
    ],
)
def test_long_and_binary_values_are_bounded(make):
    """A 100 000-character or binary value echoed by any project error: one line, bounded,
    with its start and its end kept."""
    binary = "\x00\x1b[31m\xff\ufeff\u202e" * 20_000
    for value in ("A" * 100_000, binary, "début " + "x y " * 30_000 + " fin"):
        text = str(make(value))
        assert len(text) <= 2 * errors.MAX_MESSAGE_CHARS + 100, len(text)
        assert "\n" not in text and "\x00" not in text and "\x1b" not in text and "\u202e" not in text
        assert "caractères omis" in text


def test_french_spaces_are_not_escaped():
    """The no-break spaces of French numbers stay spaces (was: a literal ``\\u202f``)."""
    err = InputError("fichier trop gros : plus de 1\u202f000\u202f000 octets (5\u00a0635 m²)")
    assert "\\u202f" not in str(err) and "\\xa0" not in str(err)
    assert "1\u202f000\u202f000 octets" in str(err)
    assert errors.one_line("a\tb\u2028c") == "a\\tb\\u2028c"  # separators that break lines: escaped


def test_literal_escape_sequences_never_reach_a_message(tmp_path, monkeypatch):
    """The TOML size refusal, which had ``\\u202f`` written out in full."""
    monkeypatch.setattr(settings, "max_toml_bytes", 1000)
    path = tmp_path / "convention.toml"
    path.write_text("# " + "x" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        schema.read_toml(path)
    assert "1\u202f000 octets" in str(err.value) and "\\u" not in str(err.value)
