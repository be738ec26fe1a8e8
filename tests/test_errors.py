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
