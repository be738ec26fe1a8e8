"""Settings read from ``ORT_*`` environment variables: strict, refused with the accepted values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from geo import settings
from geo.errors import InputError


@pytest.mark.parametrize("text", ["0", "false", "False", "non", "no", "off", "", " NON "])
def test_offline_words_for_off(text):
    assert settings.parse_bool(text) is False


@pytest.mark.parametrize("text", ["1", "true", "oui", "yes", "on", "Vrai"])
def test_offline_words_for_on(text):
    assert settings.parse_bool(text) is True


@pytest.mark.parametrize("text", ["peut-être", "2", "nope", "falsee"])
def test_unknown_boolean_word_is_refused(text):
    with pytest.raises(ValueError, match="valeurs acceptées : 1, true, oui"):
        settings.parse_bool(text)


def _settings_in_child(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORT_") or k == "ORT_SHARED_DATA"}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_offline_no_means_off():
    """ORT_OFFLINE=no used to turn offline mode *on* (any non-empty value but 0/false did)."""
    r = _settings_in_child({"ORT_OFFLINE": "no"}, "from geo import settings; print(settings.offline)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    r = _settings_in_child({"ORT_OFFLINE": "oui"}, "from geo import settings; print(settings.offline)")
    assert r.stdout.strip() == "True", r.stderr


@pytest.mark.parametrize(
    ("var", "value", "accepted"),
    [
        ("ORT_OFFLINE", "peut-être", "valeurs acceptées : 1, true, oui"),
        ("ORT_MILLESIME", "2024-13-01", "latest, ou une date AAAA-MM-JJ"),
        ("ORT_MILLESIME", "hier", "latest, ou une date AAAA-MM-JJ"),
        ("ORT_IO_ENGINE", "gdal", "pyogrio, fiona"),
        ("ORT_CSV_FORMAT", "excel", "fr, international"),
        ("ORT_BAN_URL", "api-adresse", "http:// ou https://"),
        ("ORT_CADASTRE_URL", "cadastre.data.gouv.fr", "http:// ou https://"),
        ("ORT_CACHE_DIR", "", "chemin de dossier non vide"),
        ("ORT_MAX_IMBRICATION", "0", "nombre entier strictement positif"),
        ("ORT_MAX_TOML_OCTETS", "1e6", "nombre entier strictement positif"),
    ],
)
def test_refused_variable_names_itself_and_the_accepted_values(var, value, accepted):
    """Reading the setting raises a French InputError (a ValueError); the CLI stops on one line."""
    attr = {
        "ORT_OFFLINE": "offline",
        "ORT_MILLESIME": "cadastre_millesime",
        "ORT_IO_ENGINE": "io_engine",
        "ORT_CSV_FORMAT": "csv_format",
        "ORT_BAN_URL": "ban_api_url",
        "ORT_CADASTRE_URL": "cadastre_base_url",
        "ORT_CACHE_DIR": "cache_dir",
        "ORT_MAX_IMBRICATION": "max_nesting",
        "ORT_MAX_TOML_OCTETS": "max_toml_bytes",
    }[var]
    code = (
        "from geo import settings\n"
        "try:\n"
        f"    settings.{attr}\n"
        "except ValueError as err:\n"
        "    print(type(err).__name__, err)\n"
    )
    r = _settings_in_child({var: value}, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SettingsError variable d'environnement " + var), r.stdout
    assert accepted in r.stdout and "Traceback" not in r.stdout
    cli = _settings_in_child({var: value}, "from geo.cli import main; main(['validate', '.'])")
    assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr
    line = cli.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith(f"Erreur : variable d'environnement {var}"), cli.stderr
    assert accepted in line[0]


def test_a_value_set_in_code_overrides_a_refused_variable(monkeypatch):
    """Tests and notebooks set settings in one place, even after a refused variable."""
    monkeypatch.setitem(settings._INVALID, "io_engine", settings.SettingsError("refusée"))
    monkeypatch.delattr(settings, "io_engine")
    with pytest.raises(InputError, match="refusée"):
        settings.io_engine  # noqa: B018
    with pytest.raises(InputError, match="refusée"):
        settings.check()
    settings.io_engine = "fiona"  # restored by monkeypatch.delattr at teardown
    assert settings.io_engine == "fiona"


# --- per-call settings: settings.use and the frozen Settings ----------------------------------


def test_use_holds_for_the_block_and_the_thread_only():
    import threading

    assert settings.offline is False
    seen = []
    with settings.use(offline=True, csv_format="international") as now:
        assert now == settings.Settings(offline=True, progress=False, csv_format="international")
        assert settings.offline is True and settings.csv_format == "international"
        other = threading.Thread(target=lambda: seen.append(settings.current()))
        other.start()
        other.join()
        with settings.use(settings.Settings(offline=False)):  # nested: the inner one wins
            assert settings.offline is False and settings.progress is True
        assert settings.offline is True
    assert settings.offline is False and settings.csv_format == "fr"
    assert seen == [settings.Settings(offline=False, progress=False, csv_format="fr")]  # conftest's values


def test_use_restores_after_an_error_and_refuses_unknown_names():
    with pytest.raises(ZeroDivisionError), settings.use(offline=True):
        1 / 0  # noqa: B018
    assert settings.offline is False
    with pytest.raises(TypeError, match="inconnu"), settings.use(io_engine="fiona"):
        pass
    with pytest.raises(InputError, match="format CSV"):
        settings.Settings(csv_format="excel")


def test_a_value_set_in_code_is_the_process_default_under_use(monkeypatch):
    monkeypatch.setattr(settings, "offline", True)  # a notebook's choice for the whole process
    assert settings.current().offline is True
    with settings.use(offline=False):
        assert settings.offline is False
    assert settings.offline is True


def test_refused_per_call_variable_is_refused_on_reading():
    r = _settings_in_child(
        {"ORT_CSV_FORMAT": "excel"},
        "from geo import settings\n"
        "with settings.use(csv_format='fr'):\n"
        "    print(settings.csv_format)\n"
        "try:\n"
        "    settings.current()\n"
        "except ValueError as err:\n"
        "    print(type(err).__name__)\n",
    )
    assert r.stdout.split() == ["fr", "SettingsError"], r.stderr
