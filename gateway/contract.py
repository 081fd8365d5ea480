"""The public contract across releases: what changed in the schema, and whether a change may ship.

docs/versioning.md is the policy; this module is its check. Each release keeps its schema in
docs/schema/releases/<version>.graphql and its entry in CHANGELOG.md (`## [0.1.0] - 2026-12-05`).
`contract_problems` compares the schema as it is now with the last release and answers what
would break the promise (tests/test_contract.py fails on any; `parkgate schema --diff REF`
prints the same comparison for a reviewer):

- an additive change (a type, a field, an optional argument) may ship at any time;
- a deprecation needs a reason that names the replacement in backticks (or says "No replacement");
- a breaking change (graphql-core's `find_breaking_changes`) needs a new major version: a
  CHANGELOG.md section `## [N.0.0] - <date or Unreleased>` with N above the last release's
  major, naming each broken coordinate in backticks; and a removed field, argument or enum value
  must have been deprecated in a release at least `DEPRECATION_PERIOD` before that version's date.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

from graphql import (
    DEFAULT_DEPRECATION_REASON,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
)
from graphql.utilities.find_schema_changes import (
    BreakingChangeType,
    DangerousChangeType,
    SafeChangeType,
    find_schema_changes,
)

#: where a checkout keeps the released schemas and the changelog (the CLI and the tests read them there)
REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO / "docs" / "schema" / "releases"
CHANGELOG = REPO / "CHANGELOG.md"
#: how long a deprecated field, argument or enum value stays before a major version may remove it
DEPRECATION_PERIOD = timedelta(days=90)
#: breaking changes that remove something a client may have asked for by name: deprecate it first
REMOVALS = frozenset({BreakingChangeType.FIELD_REMOVED, BreakingChangeType.ARG_REMOVED,
                      BreakingChangeType.VALUE_REMOVED_FROM_ENUM})

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?:\s*-\s*(?P<when>.+?))?\s*$", re.MULTILINE)
#: a schema coordinate in graphql-core's change descriptions: Type, Type.field, Type.field(arg:), @directive(arg:)
_COORDINATE = re.compile(r"@?[_A-Za-z]\w*(?:\.[_A-Za-z]\w*)?(?:\([_A-Za-z]\w*:\))?")
_LEADING_WORDS = frozenset({"A", "An", "required", "optional", "Field", "field", "Argument", "Enum", "value",
                            "Standard", "scalar", "Description", "of", "input-field", "enum", "Repeatable"})


class Severity(StrEnum):
    BREAKING = "BREAKING"
    DANGEROUS = "DANGEROUS"
    DEPRECATED = "DEPRECATED"
    SAFE = "SAFE"


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a version (MAJOR.MINOR.PATCH)")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Change:
    severity: Severity
    kind: str  # graphql-core's change type (FIELD_REMOVED…), or DEPRECATED
    coordinate: str  # the schema coordinate it concerns, e.g. Facility.city
    description: str
    reason: str | None = None  # a deprecation's reason

    def line(self) -> str:
        return f"{self.severity.value:<10} {self.kind:<26} {self.description}"


@dataclass(frozen=True)
class Section:
    """One `## [version] - date` section of CHANGELOG.md; `released` is None while it is being prepared."""

    version: Version
    released: date | None
    text: str


def coordinate_of(description: str) -> str:
    """The schema coordinate a graphql-core change description is about ("Field Facility.city was removed." →
    Facility.city)."""
    for token in _COORDINATE.findall(description):
        if token not in _LEADING_WORDS:
            return token
    return description


def schema_of(sdl: str, source: str) -> GraphQLSchema:
    try:
        return build_schema(sdl, assume_valid_sdl=True)
    except GraphQLError as error:
        raise ValueError(f"{source} is not a GraphQL schema: {error.message}") from None


def deprecations(schema: GraphQLSchema) -> dict[str, str]:
    """coordinate -> deprecation reason, for every deprecated field, argument, input field and enum value."""
    found: dict[str, str] = {}
    for name, named in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)):
            for field_name, field in named.fields.items():
                if field.deprecation_reason is not None:
                    found[f"{name}.{field_name}"] = field.deprecation_reason
                for arg_name, arg in field.args.items():
                    if arg.deprecation_reason is not None:
                        found[f"{name}.{field_name}({arg_name}:)"] = arg.deprecation_reason
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                if input_field.deprecation_reason is not None:
                    found[f"{name}.{field_name}"] = input_field.deprecation_reason
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                if value.deprecation_reason is not None:
                    found[f"{name}.{value_name}"] = value.deprecation_reason
    return found


def schema_changes(old_sdl: str, new_sdl: str) -> list[Change]:
    """Every change from `old_sdl` to `new_sdl`, breaking first; new deprecations among them."""
    old, new = schema_of(old_sdl, "the old schema"), schema_of(new_sdl, "the new schema")
    changes: list[Change] = []
    for change in find_schema_changes(old, new):
        if isinstance(change.type, BreakingChangeType):
            severity = Severity.BREAKING
        elif isinstance(change.type, DangerousChangeType):
            severity = Severity.DANGEROUS
        else:
            if change.type is SafeChangeType.DESCRIPTION_CHANGED:
                continue  # wording; a reviewer reads those in the diff of schema.graphql
            severity = Severity.SAFE
        changes.append(Change(severity, change.type.name, coordinate_of(change.description), change.description))
    before = deprecations(old)
    for coordinate, reason in sorted(deprecations(new).items()):
        if before.get(coordinate) != reason:
            changes.append(Change(Severity.DEPRECATED, "DEPRECATED", coordinate, f"{coordinate} is deprecated: {reason}",
                                  reason))
    order = list(Severity)
    return sorted(changes, key=lambda c: (order.index(c.severity), c.coordinate))


def changelog_sections(changelog: str) -> list[Section]:
    """The versioned sections of CHANGELOG.md, newest first as written (`## [Unreleased]` is not one)."""
    sections: list[Section] = []
    headings = list(_HEADING.finditer(changelog))
    for index, heading in enumerate(headings):
        if heading["version"].strip().lower() == "unreleased":
            continue
        end = headings[index + 1].start() if index + 1 < len(headings) else len(changelog)
        when = (heading["when"] or "").strip()
        released = None if when.lower() in ("", "unreleased") else date.fromisoformat(when)
        sections.append(Section(Version.parse(heading["version"]), released, changelog[heading.end():end]))
    return sections


def deprecation_problem(coordinate: str, reason: str) -> str | None:
    if not reason.strip() or reason == DEFAULT_DEPRECATION_REASON:
        return f"{coordinate} is deprecated without a reason: say what replaces it, e.g. @deprecated(reason: \"Use `…`.\")"
    if "`" not in reason and not reason.lower().startswith("no replacement"):
        return (f"{coordinate} is deprecated, but its reason does not name the replacement in backticks "
                f"(or say \"No replacement: …\"): {reason!r}")
    return None


def first_deprecated(coordinate: str, releases: dict[Version, str], released_on: dict[Version, date]) -> date | None:
    """The date of the earliest release whose schema has `coordinate` deprecated."""
    for version in sorted(releases):
        if coordinate in deprecations(schema_of(releases[version], f"release {version}")):
            return released_on.get(version)
    return None


def contract_problems(current_sdl: str, releases: dict[Version, str], changelog: str, today: date) -> list[str]:
    """What in `current_sdl` breaks the versioning policy, compared with the last of `releases`
    (version -> its SDL) and what `changelog` records. Empty when it may ship."""
    if not releases:
        return ["no released schema to compare with (docs/schema/releases/<version>.graphql)"]
    last = max(releases)
    changes = schema_changes(releases[last], current_sdl)
    problems = [problem for change in changes if change.severity is Severity.DEPRECATED
                if (problem := deprecation_problem(change.coordinate, change.reason or ""))]
    breaking = [change for change in changes if change.severity is Severity.BREAKING]
    if not breaking:
        return problems
    sections = changelog_sections(changelog)
    majors = [s for s in sections if s.version.major > last.major and s.version.minor == s.version.patch == 0]
    if not majors:
        listed = "; ".join(change.description for change in breaking)
        return [*problems, (f"breaking changes since {last} need a new major version ({last.major + 1}.0.0) in "
                           f"CHANGELOG.md that names each of them: {listed}")]
    major = min(majors, key=lambda s: s.version)
    released_on = {s.version: s.released for s in sections if s.released is not None}
    ships_on = major.released or today
    last_deprecations = deprecations(schema_of(releases[last], f"release {last}"))
    for change in breaking:
        if f"`{change.coordinate}`" not in major.text:
            problems.append(f"CHANGELOG.md [{major.version}] does not name the breaking change `{change.coordinate}` "
                            f"({change.description})")
        if BreakingChangeType[change.kind] in REMOVALS:
            if change.coordinate not in last_deprecations:
                problems.append(f"{change.coordinate} is removed without having been deprecated in {last}: deprecate "
                                f"it first (docs/versioning.md), remove it in a major version "
                                f"{DEPRECATION_PERIOD.days} days later")
                continue
            since = first_deprecated(change.coordinate, releases, released_on)
            if since is None or ships_on < since + DEPRECATION_PERIOD:
                problems.append(f"{change.coordinate} was deprecated on {since}; it may be removed from "
                                f"{since + DEPRECATION_PERIOD if since else 'a dated release'} on, not in {major.version} "
                                f"({ships_on})")
    return problems


def released_schemas(folder: Path = RELEASES) -> dict[Version, str]:
    """version -> the SDL kept for it."""
    if not folder.is_dir():
        return {}
    return {Version.parse(path.stem): path.read_text(encoding="utf-8") for path in folder.glob("*.graphql")}


def schema_at(ref: str, folder: Path = RELEASES) -> tuple[str, str]:
    """(what it is, its SDL) for a REF of `parkgate schema --diff`: `latest` (the last release), a released
    version (`0.1.0`), a file, or a git revision of the checkout (`main`, `HEAD~3`, `v0.1.0`; its
    schema.graphql, or `REV:path` for another file). ValueError saying why when it names nothing."""
    releases = released_schemas(folder)
    if ref == "latest":
        if not releases:
            raise ValueError(f"no released schema in {folder}")
        version = max(releases)
        return f"release {version}", releases[version]
    if _VERSION.match(ref):
        version = Version.parse(ref)
        if version not in releases:
            known = ", ".join(str(v) for v in sorted(releases)) or "none"
            raise ValueError(f"{ref} is not a released version (released: {known})")
        return f"release {version}", releases[version]
    path = Path(ref)
    if path.is_file():
        return str(path), path.read_text(encoding="utf-8")
    if ref.startswith("-") or not ref.strip():
        raise ValueError(f"{ref!r} is neither a released version, nor a file, nor a git revision")
    spec = ref if ":" in ref else f"{ref}:schema.graphql"
    try:
        shown = subprocess.run(["git", "show", spec], cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"{ref!r} is not a released version or a file, and git cannot be asked: {exc}") from None
    if shown.returncode != 0:
        raise ValueError(f"{ref!r} is neither a released version, nor a file, nor a git revision of this checkout "
                         f"({shown.stderr.strip().splitlines()[-1] if shown.stderr.strip() else 'git show failed'})")
    return f"git {spec}", shown.stdout
