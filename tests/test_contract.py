"""The breaking-change gate (docs/versioning.md, gateway/contract.py): the schema this code generates
against the last released one, and CHANGELOG.md, docs/schema/releases/ and the version agreeing.

The first test is the gate itself; the others give the gate function schemas changed on purpose,
to show it refuses what the policy refuses and lets through what the policy allows.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from datetime import date, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.cli import app
from gateway.contract import (
    CHANGELOG,
    DEPRECATION_PERIOD,
    Severity,
    Version,
    changelog_sections,
    contract_problems,
    released_schemas,
    schema_at,
    schema_changes,
)
from resolvers.schema import sdl
from tests.support import REPO

V010 = Version(0, 1, 0)
TODAY = date(2027, 6, 1)
#: a field every release so far has, to change on purpose
FIELD = '  """City the facility is in."""\n  city: String\n'


def release() -> str:
    return released_schemas()[max(released_schemas())]


def changelog(*sections: str) -> str:
    return "# Changelog\n\n## [Unreleased]\n\n" + "\n".join(sections) + "\n## [0.1.0] - 2026-12-05\n\n- First.\n"


def with_city(schema: str, replacement: str) -> str:
    assert FIELD in schema
    return schema.replace(FIELD, replacement, 1)


def test_the_schema_breaks_nothing_the_changelog_does_not_record() -> None:
    problems = contract_problems(sdl(), released_schemas(), CHANGELOG.read_text(encoding="utf-8"), date.today())
    assert problems == [], "\n".join(problems)


def test_releases_the_changelog_and_the_version_agree() -> None:
    sections = changelog_sections(CHANGELOG.read_text(encoding="utf-8"))
    dated = {s.version for s in sections if s.released is not None}
    assert dated == set(released_schemas()), "each dated release in CHANGELOG.md keeps its schema, and only those"
    assert [s.version for s in sections] == sorted((s.version for s in sections), reverse=True), "newest first"
    assert "## [Unreleased]" in CHANGELOG.read_text(encoding="utf-8")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert Version.parse(project["version"]) == max(dated), "pyproject.toml's version is the last release"
    shown = CliRunner().invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output == f"parkgate {project['version']}\n"


def test_a_removed_field_fails_the_gate() -> None:
    removed = with_city(release(), "")
    [problem, *rest] = contract_problems(removed, released_schemas(), changelog(), TODAY)
    assert "breaking changes since 0.1.0 need a new major version (1.0.0)" in problem
    assert "Facility.city was removed" in problem and not rest
    # a new major version that names it is not enough: it was never deprecated
    problems = contract_problems(removed, released_schemas(), changelog("## [1.0.0] - Unreleased\n\n- `Facility.city`\n"),
                                 TODAY)
    assert problems == [("Facility.city is removed without having been deprecated in 0.1.0: deprecate it first "
                        "(docs/versioning.md), remove it in a major version 90 days later")]


def test_a_deprecation_with_a_reason_passes_and_one_without_fails() -> None:
    deprecated = with_city(release(), '  """City the facility is in."""\n'
                                      '  city: String @deprecated(reason: "Use `address.city`.")\n')
    assert contract_problems(deprecated, released_schemas(), changelog(), TODAY) == []
    assert [c.line() for c in schema_changes(release(), deprecated)] == [
        "DEPRECATED DEPRECATED                 Facility.city is deprecated: Use `address.city`."]
    bare = with_city(release(), '  """City the facility is in."""\n  city: String @deprecated\n')
    assert contract_problems(bare, released_schemas(), changelog(), TODAY) == [
        'Facility.city is deprecated without a reason: say what replaces it, e.g. @deprecated(reason: "Use `…`.")']
    vague = with_city(release(), '  """City the facility is in."""\n  city: String @deprecated(reason: "Going away.")\n')
    assert "does not name the replacement" in contract_problems(vague, released_schemas(), changelog(), TODAY)[0]


def test_a_removal_after_its_deprecation_period_passes_under_a_new_major_only() -> None:
    deprecated_on = date(2027, 1, 4)
    deprecated = with_city(release(), '  """City the facility is in."""\n'
                                      '  city: String @deprecated(reason: "Use `address.city`.")\n')
    releases = {**released_schemas(), Version(0, 2, 0): deprecated}
    history = "## [0.2.0] - " + deprecated_on.isoformat() + "\n\n### Deprecated\n\n- `Facility.city`\n"
    removed = with_city(release(), "")

    def problems(major: str, today: date = TODAY) -> list[str]:
        return contract_problems(removed, releases, changelog(major, history), today)

    assert problems("## [1.0.0] - Unreleased\n\n### Removed\n\n- `Facility.city`: use `address.city`.\n") == []
    assert problems("## [1.0.0] - 2027-05-01\n\n### Removed\n\n- `Facility.city`\n") == []
    # not named, not a major, or too soon
    assert "does not name the breaking change `Facility.city`" in problems("## [1.0.0] - Unreleased\n\n- a field\n")[0]
    assert "need a new major version (1.0.0)" in problems("## [0.3.0] - Unreleased\n\n- `Facility.city`\n")[0]
    too_soon = deprecated_on + DEPRECATION_PERIOD - timedelta(days=1)
    assert problems("## [1.0.0] - Unreleased\n\n- `Facility.city`\n", too_soon) == [
        (f"Facility.city was deprecated on {deprecated_on}; it may be removed from "
        f"{deprecated_on + DEPRECATION_PERIOD} on, not in 1.0.0 ({too_soon})")]


def test_a_changed_type_is_breaking_and_an_added_field_is_not() -> None:
    changed = with_city(release(), '  """City the facility is in."""\n  city: Int\n')
    stricter = with_city(release(), '  """City the facility is in."""\n  city: String!\n')  # safe for a reader
    added = with_city(release(), FIELD + '  """Added on purpose."""\n  floorCount: Int\n')
    assert [(c.severity, c.kind, c.coordinate) for c in schema_changes(release(), changed)] == [
        (Severity.BREAKING, "FIELD_CHANGED_KIND", "Facility.city")]
    assert "need a new major version" in contract_problems(changed, released_schemas(), changelog(), TODAY)[0]
    assert contract_problems(stricter, released_schemas(), changelog(), TODAY) == []
    assert contract_problems(added, released_schemas(), changelog(), TODAY) == []
    assert [(c.severity, c.kind, c.coordinate) for c in schema_changes(release(), added)] == [
        (Severity.SAFE, "FIELD_ADDED", "Facility.floorCount")]


def test_schema_diff_prints_the_changes_for_a_reviewer(tmp_path: Path) -> None:
    runner = CliRunner()
    same = runner.invoke(app, ["schema", "--diff", "latest"])
    assert same.exit_code in (0, 1) and same.output.startswith("Changes from release 0.1.0 to the schema of this code:\n")
    assert runner.invoke(app, ["schema", "--diff", "0.1.0"]).output == same.output
    # a file whose Facility.city has gone: from it to this code, the field is added back (safe)
    older = tmp_path / "older.graphql"
    older.write_text(with_city(release(), ""), encoding="utf-8")
    from_file = runner.invoke(app, ["schema", "--diff", str(older)])
    assert re.search(r"^SAFE\s+FIELD_ADDED\s+Field Facility.city was added\.$", from_file.output, re.MULTILINE), from_file.output
    # and the other way round, a schema with a field this code lacks: breaking, exit 1
    older.write_text(with_city(release(), FIELD + '  """Only there."""\n  gone: Int\n'), encoding="utf-8")
    breaking = runner.invoke(app, ["schema", "--diff", str(older)])
    assert breaking.exit_code == 1
    assert re.search(r"^BREAKING\s+FIELD_REMOVED\s+Field Facility.gone was removed\.$", breaking.output, re.MULTILINE)


def test_schema_diff_reads_a_git_revision() -> None:
    head = subprocess.run(["git", "show", "HEAD:schema.graphql"], cwd=REPO, capture_output=True, text=True, check=True)
    label, text = schema_at("HEAD")
    assert (label, text) == ("git HEAD:schema.graphql", head.stdout)


@settings(max_examples=40, deadline=None)
@given(ref=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30)
       .filter(lambda r: r not in ("latest", "0.1.0", "HEAD") and not (REPO / r).exists()))
def test_schema_diff_refuses_what_names_no_schema_clearly(ref: str) -> None:
    result = CliRunner().invoke(app, ["schema", "--diff", ref])
    if result.exit_code in (0, 1):  # a real git revision after all (a branch name, an abbreviated hash)
        assert result.output.startswith("Changes from git ")
        return
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
