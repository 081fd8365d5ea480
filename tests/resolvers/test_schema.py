"""The schema is the public contract: committed, current, and described throughout."""

from __future__ import annotations

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, build_schema

from resolvers.schema import schema, sdl
from tests.support import REPO

COMMITTED = REPO / "schema.graphql"


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == sdl(), "schema.graphql is stale: run `parkgate schema > schema.graphql`"


def test_every_type_field_and_argument_is_described() -> None:
    printed = build_schema(COMMITTED.read_text(encoding="utf-8"))
    missing = []
    for name, type_ in printed.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(type_, GraphQLEnumType) and not type_.description:
            missing.append(name)
    assert not missing, f"undescribed: {missing}"


def test_the_code_schema_and_the_printed_one_agree() -> None:
    assert set(build_schema(sdl()).type_map) == set(schema._schema.type_map)
