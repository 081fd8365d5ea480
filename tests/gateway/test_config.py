"""A broken configuration fails at start, naming the key and what is wrong with it."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.datex2 import Datex2Adapter
from gateway.config import ConfigError, load_config, parse_config
from tests.support import REPO

GOOD: dict[str, Any] = {
    "systems": {
        "parcs-main": {"dialect": "apds", "base_url": "https://parcs.example.com/", "credentials": {"token": "${PARCS_TOKEN}"}},
        "sensors": {
            "dialect": "sensor-grid",
            "base_url": "https://sensors.example.com",
            "credentials": {"client_id": "${SENSOR_ID}", "client_secret": "${SENSOR_SECRET}"},
            "timeout_s": 3,
        },
    },
    "facilities": {
        "garage-one": {
            "name": "Garage One",
            "city": "Berlin",
            "time_zone": "Europe/Berlin",
            "systems": {"parcs-main": "7f3c", "sensors": "12"},
            "levels": {"P1": {"name": "Level 1", "systems": {"sensors": "12-1"}}},
        }
    },
}
ENV = {"PARCS_TOKEN": "t0k", "SENSOR_ID": "id", "SENSOR_SECRET": "s3cret"}


def broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    change(document)
    return document


def test_a_good_configuration_resolves_credentials_from_the_environment() -> None:
    config = parse_config(copy.deepcopy(GOOD), environ=ENV)
    assert config.systems["parcs-main"].credentials == {"token": "t0k"}
    assert config.systems["parcs-main"].base_url == "https://parcs.example.com"
    spec = {s.id: s for s in config.specs()}["sensors"]
    assert spec.kind.value == "GUIDANCE" and spec.timeout_s == 3


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["systems"]["parcs-main"].update(dialect="apdx"), "systems.parcs-main.dialect: unknown dialect 'apdx'"),
        (lambda d: d["systems"]["parcs-main"].update(base_url="ftp://x"), "systems.parcs-main.base_url: 'ftp://x' is not an http(s) URL"),
        (lambda d: d["systems"]["parcs-main"]["credentials"].update(token="plain-secret"),
         "systems.parcs-main.credentials.token: write a reference to an environment variable"),
        (lambda d: d["systems"]["parcs-main"]["credentials"].update(token="${MISSING_VAR}"),
         "systems.parcs-main.credentials.token: environment variable MISSING_VAR is not set"),
        (lambda d: d["systems"]["parcs-main"].update(credentials={}), "systems.parcs-main: dialect 'apds' needs credentials: token"),
        (lambda d: d["systems"]["parcs-main"].update(kind="GUIDANCE"), "dialect 'apds' is a PARCS system, not GUIDANCE"),
        (lambda d: d["systems"]["parcs-main"].update(timeout_s=0), "systems.parcs-main.timeout_s"),
        (lambda d: d["systems"]["parcs-main"].update(colour="blue"), "systems.parcs-main.colour: Extra inputs are not permitted"),
        (lambda d: d["facilities"]["garage-one"].update(time_zone="Europe/Berln"),
         "facilities.garage-one.time_zone: 'Europe/Berln' is not a known IANA time zone"),
        (lambda d: d["facilities"]["garage-one"].pop("time_zone"), "facilities.garage-one.time_zone: Field required"),
        (lambda d: d["facilities"]["garage-one"]["systems"].update(ghost="1"),
         "facilities.garage-one.systems.ghost: no such system in `systems`"),
        (lambda d: d["facilities"]["garage-one"]["levels"]["P1"]["systems"].update({"parcs-other": "x"}),
         "facilities.garage-one.levels.P1.systems.parcs-other: the facility has no id in that system"),
        (lambda d: d["facilities"].update({"Bad Id": d["facilities"]["garage-one"]}), "id 'Bad Id' must be lower-case"),
        (lambda d: d.pop("facilities"), "facilities: Field required"),
        (lambda d: d.update(finance={"facilities": {"garage-onne": {"code": "G1"}}}),
         "finance.facilities.garage-onne: no such facility in `facilities`"),
    ],
)
def test_broken_configurations_name_the_key(change: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(broken(change), environ=ENV)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once_missing_variables_and_bad_values() -> None:
    """A misspelt time zone is not hidden behind the environment variables still to set."""
    def many(d: dict[str, Any]) -> None:
        d["facilities"]["garage-one"]["time_zone"] = "Europe/Berln"
        d["systems"]["parcs-main"]["base_url"] = "ftp://parcs.example.com"
        d["systems"]["sensors"]["credentials"]["client_secret"] = "written-in-the-file"

    with pytest.raises(ConfigError) as caught:
        parse_config(broken(many), environ={"SENSOR_ID": "id"})  # PARCS_TOKEN is not set either
    lines = str(caught.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "systems.parcs-main.credentials.token: environment variable PARCS_TOKEN is not set",
        ("systems.sensors.credentials.client_secret: write a reference to an environment variable like "
         "${PARCS_TOKEN}, not the secret"),
        "systems.parcs-main.base_url: 'ftp://parcs.example.com' is not an http(s) URL",
        "facilities.garage-one.time_zone: 'Europe/Berln' is not a known IANA time zone (e.g. Europe/Berlin)",
    ]
    assert "written-in-the-file" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "variable", "where"),
    [
        (lambda d: d["systems"]["parcs-main"].update(timeout_s="${PARCS_TIMEOUT}"), "PARCS_TIMEOUT",
         "systems.parcs-main.timeout_s"),
        (lambda d: d["systems"]["parcs-main"].update(base_url="${PARCS_URL}"), "PARCS_URL", "systems.parcs-main.base_url"),
        (lambda d: d.update(webhooks={"allow_networks": ["${PARTNER_NET}"]}), "PARTNER_NET", "webhooks.allow_networks.0"),
    ],
)
def test_a_missing_variable_is_one_problem_not_also_a_bad_value(change: Any, variable: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(broken(change), environ=ENV)
    assert str(caught.value).splitlines()[1:] == [f"  {where}: environment variable {variable} is not set"]


def test_two_parcs_for_one_facility_is_refused() -> None:
    def two(d: dict[str, Any]) -> None:
        d["systems"]["parcs-two"] = {"dialect": "parkline", "base_url": "https://p2.example.com", "credentials": {"api_key": "${PARCS_TOKEN}"}}
        d["facilities"]["garage-one"]["systems"]["parcs-two"] = "KX01"

    with pytest.raises(ConfigError, match=r"facilities.garage-one.systems.parcs-two: the facility already has a PARCS system \(parcs-main\)"):
        parse_config(broken(two), environ=ENV)


def test_files_that_are_not_configurations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("systems: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad_yaml)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(scalar)


def test_parkgate_serve_refuses_a_broken_file_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "parkgate.yaml"
    path.write_text(yaml.safe_dump(broken(lambda d: d["facilities"]["garage-one"].update(time_zone="Mars/Olympus"))))
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, env={"PATH": "", **ENV})
    assert result.returncode == 2
    assert "facilities.garage-one.time_zone: 'Mars/Olympus' is not a known IANA time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_parkgate_serve_names_missing_variables_and_a_misspelt_time_zone_together(tmp_path: Path) -> None:
    path = tmp_path / "parkgate.yaml"
    path.write_text(yaml.safe_dump(broken(lambda d: d["facilities"]["garage-one"].update(time_zone="Europe/Berln"))))
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, env={"PATH": ""}, check=False)
    assert result.returncode == 2
    for problem in ("systems.parcs-main.credentials.token: environment variable PARCS_TOKEN is not set",
                    "systems.sensors.credentials.client_id: environment variable SENSOR_ID is not set",
                    "facilities.garage-one.time_zone: 'Europe/Berln' is not a known IANA time zone"):
        assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_the_example_configuration_is_valid() -> None:
    example = REPO / "docs" / "parkgate.example.yaml"
    env = {name: "x" for name in ("PARCS_CENTRAL_TOKEN", "PARCS_LONDON_API_KEY", "GUIDANCE_CLIENT_ID",
                                  "GUIDANCE_CLIENT_SECRET", "LPR_USERNAME", "LPR_PASSWORD", "LPR_API_KEY",
                                  "MEWS_CLIENT_TOKEN", "MEWS_ACCESS_TOKEN", "PARKGATE_KEY_PEPPER")}
    env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    config = load_config(example, environ=env)
    assert len(config.facilities) >= 6
    assert config.store.backend == "redis" and config.store.redis_url == "redis://127.0.0.1:6379/0"


def test_the_yaml_docs_configuration_shows_for_a_datex2_publisher_loads() -> None:
    """docs/configuration.md tells an operator what to write for a DATEX II publisher: that YAML
    loads as written, and the adapter takes its options."""
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = page.split("## A DATEX II publisher", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section shows one configuration"
    document = yaml.safe_load(blocks[0])
    environ = {name: "x" for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", blocks[0])}
    config = parse_config(document, source="docs/configuration.md", environ=environ)
    [(system_id, system)] = [(i, s) for i, s in config.systems.items() if s.dialect == "datex2"]
    adapter = Datex2Adapter(system.spec(system_id))
    assert adapter.status.path.startswith("https://") and not adapter.table.path.startswith("https://")
    facility = next(iter(config.facilities.values()))
    assert facility.systems[system_id] and all(level.systems[system_id] for level in facility.levels.values())
