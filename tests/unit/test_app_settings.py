"""The one configuration tree (threadline.app.settings): flat THREADLINE_* names map onto
sections, a misspelt variable is refused with the closest valid name, production refuses
weak secrets, `config show` masks secrets, docs/configuration.md is generated from the tree,
and nothing outside the composition root reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from threadline.app.settings import load_settings, masked, variables
from threadline.app.settings_doc import DOC, render
from threadline.handoff.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
STRONG = "k3J9-q0Zr_7vXb2LwP8sN5tYc1MhD4fG6aE"


def test_flat_names_reach_their_sections() -> None:
    s = load_settings(
        {
            "THREADLINE_DATABASE_URL": "postgresql://db/x",
            "THREADLINE_PSTN_TRUNK": "10.0.0.1:5060",
            "THREADLINE_CONSOLE_COOKIE_SECURE": "true",
            "THREADLINE_ICE_HOST_ADDRESSES": "127.0.0.1, ::1",
            "THREADLINE_PSTN_CODECS": "[8]",
            "THREADLINE_GROUP_COMMIT": "0",
            "PATH": "/usr/bin",  # not ours: ignored
        }
    )
    # One variable, every section that has the field.
    assert s.ledger.database_url == s.channels.database_url == s.stream.database_url
    assert s.ledger.database_url == "postgresql://db/x"
    assert s.pstn.trunk == "10.0.0.1:5060"
    assert s.console.cookie_secure is True
    assert s.voice.ice_host_addresses == ("127.0.0.1", "::1")
    assert s.pstn.codecs == (8,)
    assert s.ledger.group_commit is False


def test_defaults_need_no_environment() -> None:
    s = load_settings({})
    assert s.env == "development"
    assert s.ledger.database_url == "sqlite:///threadline.db"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("THREADLINE_DATABSE_URL", "THREADLINE_DATABASE_URL"),
        ("THREADLINE_PSTN_TRUNC", "THREADLINE_PSTN_TRUNK"),
        ("threadline_secrte", "THREADLINE_SECRET"),
    ],
)
def test_a_misspelt_variable_names_the_closest_valid_one(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({name: "x"})
    message = str(caught.value)
    assert message == f"unknown setting {name}: did you mean {suggestion}?"
    assert "\n" not in message


def test_pruned_tuning_knobs_are_not_settings() -> None:
    names = {name for name, _, _ in variables()}
    assert "THREADLINE_RELAY_BACKOFF_MAX_S" not in names
    with pytest.raises(ConfigurationError, match="unknown setting"):
        load_settings({"THREADLINE_RELAY_BACKOFF_MAX_S": "1"})


def test_the_retired_data_subject_allow_list_says_what_replaced_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"THREADLINE_DATA_SUBJECT_KEYS": "0123456789abcdef"})
    assert str(caught.value) == (
        "THREADLINE_DATA_SUBJECT_KEYS was replaced by API key scopes: threadline keys create "
        "--scope data-subjects"
    )


def test_the_checkpoint_interval_is_a_setting() -> None:
    assert load_settings({}).ledger.checkpoint_interval_s == 300.0
    assert (
        load_settings({"THREADLINE_CHECKPOINT_INTERVAL_S": "0"}).ledger.checkpoint_interval_s == 0
    )
    with pytest.raises(ConfigurationError, match="THREADLINE_CHECKPOINT_INTERVAL_S"):
        load_settings({"THREADLINE_CHECKPOINT_INTERVAL_S": "-1"})


def test_a_bad_value_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"THREADLINE_PORT": "99999"})
    assert str(caught.value).startswith("invalid setting THREADLINE_PORT:")


@pytest.mark.parametrize(
    ("environ", "why"),
    [
        ({}, "must be set"),
        ({"THREADLINE_SECRET": "changeme-changeme-changeme-changeme"}, "placeholder"),
        ({"THREADLINE_SECRET": "x" * 40}, "placeholder"),
        ({"THREADLINE_SECRET": "short-but-random-Zq8"}, "at least 32"),
        ({"THREADLINE_SECRET": STRONG, "THREADLINE_MASTER_KEY": "tooShort1"}, "at least 32"),
        ({"THREADLINE_SECRET": STRONG, "THREADLINE_TWILIO_AUTH_TOKEN": "secret"}, "placeholder"),
    ],
)
def test_production_refuses_weak_secrets(environ: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        load_settings({"THREADLINE_ENV": "production", **environ})


def test_production_accepts_real_secrets_and_development_is_lenient() -> None:
    prod = load_settings({"THREADLINE_ENV": "production", "THREADLINE_SECRET": STRONG})
    assert prod.env == "production"
    assert load_settings({"THREADLINE_SECRET": "changeme"}).env == "development"


def test_config_show_masks_every_secret() -> None:
    s = load_settings({"THREADLINE_SECRET": STRONG, "THREADLINE_MASTER_KEY": STRONG[::-1]})
    shown = masked(s)
    assert shown["THREADLINE_SECRET"] == "********"
    assert shown["THREADLINE_MASTER_KEY"] == "********"
    assert STRONG not in repr(shown)
    assert STRONG[::-1] not in repr(shown)
    assert shown["THREADLINE_DATABASE_URL"] == "sqlite:///threadline.db"


def test_configuration_doc_is_generated_from_the_tree() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run python -m threadline.app.settings_doc"
    )
    for name, _, _ in variables():
        assert f"`{name}`" in render()


def _reads_environment(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            # Setting a vendor's offline guard (HF_HUB_OFFLINE) is not reading configuration.
            and ".setdefault(" not in lines[node.lineno - 1]
        ):
            found.append(f"os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "pydantic_settings":
            found.extend(a.name for a in node.names if a.name != "NoDecode")
    return found


def test_only_the_composition_root_reads_the_environment() -> None:
    """Library code gets its section passed in; `threadline.app` reads the environment."""
    packages = ["ledger", "projections", "handoff", "agent", "access", "streaming", "channels"]
    offenders = {
        str(p.relative_to(ROOT)): _reads_environment(p)
        for package in packages
        for p in sorted((ROOT / package).rglob("*.py"))
        if _reads_environment(p)
    }
    assert offenders == {}


def test_production_on_postgresql_requires_checkpoint_files() -> None:
    """Issue 17, class 5: without signed checkpoints a cut tail goes unseen; PostgreSQL has no
    default place outside the database for them, so production refuses to start."""
    base = {
        "THREADLINE_ENV": "production",
        "THREADLINE_SECRET": "Vq7Lx2Pz9Kc4Wm8Rt1Hy6Bn3Jd5Gf0Sa",
        "THREADLINE_DATABASE_URL": "postgresql://db/x",
    }
    with pytest.raises(ConfigurationError, match="THREADLINE_CHECKPOINT_KEY_FILE"):
        load_settings(base)
    ok = load_settings(
        base
        | {
            "THREADLINE_CHECKPOINT_KEY_FILE": "/audit/checkpoint.key",
            "THREADLINE_CHECKPOINT_FILE": "/audit/checkpoints.jsonl",
        }
    )
    assert ok.ledger.checkpoint_file is not None
