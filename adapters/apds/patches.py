"""The APDS document as parkgate validates against it: the published modular document in `spec/`
(copied verbatim from parkingdata/spec, MIT, see spec/LICENSE), with its known defects patched
here, in one place, each patch named and with its reason.

The document calls itself a working draft. As published, a strict OpenAPI tool cannot load it
(two references point at files that do not exist) and some of its schemas can never be satisfied
(a `oneOf` whose alternatives always match together, an object that must have two properties
and at most one). Real implementers patch it; these are our patches. None of them loosens what
the document means to say: each makes a schema say what its own descriptions (or the rest of
the document) already say.

`load_documents()` reads every YAML file of the document and applies `PATCHES` in order; the
conformance checker (conformance.py) validates messages against the result. A patch that no
longer applies (the document changed under it) raises, so a stale patch never hides silently.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema_path.loaders import JsonschemaSafeLoader

SPEC_DIR = Path(__file__).parent / "spec"
ROOT_DOCUMENT = "api/reference/APDS_API.yaml"

Documents = dict[str, Any]  # path below SPEC_DIR ("api/models/api/EventData.yaml") -> parsed YAML


class PatchDoesNotApply(Exception):
    """The document no longer has the defect a patch fixes: review the patch."""


@dataclass(frozen=True)
class Patch:
    name: str
    reason: str
    apply: Callable[[Documents], None]


def _doc(documents: Documents, path: str) -> Any:
    try:
        return documents[path]
    except KeyError:
        raise PatchDoesNotApply(f"no document {path}") from None


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise PatchDoesNotApply(what)


# --- the patches ---------------------------------------------------------------------------------


def _linked_right_time_relative(documents: Documents) -> None:
    prop = _doc(documents, "api/models/eligibility/LinkedRightSpecification.yaml")["properties"]["assignedRightTimeRelative"]
    _expect(prop.get("$ref") == "./AssignedRightTimeRelative.yaml", "LinkedRightSpecification's reference changed")
    prop["$ref"] = "./AssignedTimeRelative.yaml"


def _vehicle_ancillary_identification(documents: Documents) -> None:
    props = _doc(documents, "api/models/session/Session.yaml")["allOf"][1]["properties"]
    _expect(props["identifiedVehicle"].get("$ref") == "../common/VehicleAncilliaryIdentification.yaml",
            "Session.identifiedVehicle's reference changed")
    props["identifiedVehicle"]["$ref"] = "../common/VehicleAncillaryIdentification.yaml"


def _boolean_default(documents: Documents) -> None:
    prop = _doc(documents, "api/models/api/EventSubscription.yaml")["properties"]["includeChildrenEvents"]
    _expect(prop.get("default") == "false", "EventSubscription.includeChildrenEvents' default changed")
    prop["default"] = False


def _reference_has_two_properties(documents: Documents) -> None:
    reference = _doc(documents, "api/models/common/Reference.yaml")
    _expect(reference.get("maxProperties") == 1 and reference.get("required") == ["className", "id"],
            "Reference no longer requires two properties with maxProperties 1")
    del reference["maxProperties"]
    del reference["minProperties"]


def _hierarchy_element_by_type(documents: Documents) -> None:
    data = _doc(documents, "api/models/api/HierarchyElementData.yaml")
    _expect("oneOf" in data and len(data["oneOf"]) == 7, "HierarchyElementData's alternatives changed")
    types = {
        "../place/hierarchy/Campus.yaml": ["campus"],
        "../place/hierarchy/Place.yaml": ["parkingPlace"],
        "../place/hierarchy/SubplaceElement.yaml": ["subplaceElement"],
        "../place/hierarchy/IdentifiedArea.yaml": ["identifiedArea"],
        "../place/hierarchy/Space.yaml": ["space"],
        "../place/hierarchy/SupplementalEquipment.yaml": ["identifiedArea"],
        "../place/hierarchy/SupplementalServiceFacility.yaml": ["identifiedArea"],
    }
    alternatives = []
    for alternative in data.pop("oneOf"):
        ref = alternative["$ref"]
        alternatives.append({"allOf": [{"$ref": ref}, {"type": "object", "required": ["type"],
                                                          "properties": {"type": {"enum": types[ref]}}}]})
    data["anyOf"] = alternatives


def _subplace_element_type(documents: Documents) -> None:
    subplace = _doc(documents, "api/models/place/hierarchy/SubplaceElement.yaml")
    props = subplace["allOf"][1]["properties"]
    _expect(props.get("type", {}).get("$ref") == "../../enums/ElementDescriptorEnum.yaml",
            "SubplaceElement no longer overrides `type`")
    del props["type"]


def _holder_credential_any_of(documents: Documents) -> None:
    credential = _doc(documents, "api/models/right/HolderCredential.yaml")
    _expect(len(credential.get("oneOf", ())) == 3, "HolderCredential's alternatives changed")
    credential["anyOf"] = credential.pop("oneOf")


def _reference_to_quote(documents: Documents) -> None:
    reference = _doc(documents, "api/models/right/ReferenceToQuote.yaml")
    _expect(len(reference.get("oneOf", ())) == 2, "ReferenceToQuote's alternatives changed")
    for name in ("ReferenceQuoteExtension", "ReferenceQuoteNew"):
        schema = _doc(documents, f"api/models/right/{name}.yaml")
        _expect("required" not in schema, f"{name} requires something now")
        schema["required"] = ["quoteResponseId", "optionId"]
    reference["anyOf"] = reference.pop("oneOf")


_README_STATUSES = {
    "401": "Unauthorized: the X-MCC-Access-Token header is missing or bears an unknown token",
    "403": "Forbidden: the client lacks the privileges for this operation and resource",
    "429": "Too Many Requests: the client exceeded the requests per minute allowed",
}


def _readme_statuses(documents: Documents) -> None:
    paths = _doc(documents, ROOT_DOCUMENT)["paths"]
    status = {"content": {"application/json": {"schema": {"$ref": "../models/api/ResponseStatus.yaml"}}}}
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete"):
                continue
            responses = operation["responses"]
            extra = dict(_README_STATUSES)
            if method == "post" and path != "/quotes" and "201" in responses:
                extra["409"] = "Conflict: the identifier is taken (the README: duplicate ids are signalled with 409)"
            if path.endswith("/{id}"):
                extra["404"] = "Not Found: no resource has that identifier"
            for code, description in extra.items():
                _expect(code not in responses or code in ("404", "409"), f"{method.upper()} {path} declares {code} now")
                responses.setdefault(code, {"description": description, **copy.deepcopy(status)})


def _segment_financial_transactions(documents: Documents) -> None:
    props = _doc(documents, "api/models/session/Segment.yaml")["allOf"][1]["properties"]
    _expect("financialTransactions" not in props, "Segment declares financialTransactions now")
    props["financialTransactions"] = {
        "type": "array",
        "description": "The financial data of this segment (FinancialTransaction.yaml)",
        "items": {"$ref": "./FinancialTransaction.yaml"},
    }


def _financial_transaction_currency(documents: Documents) -> None:
    transaction = _doc(documents, "api/models/session/FinancialTransaction.yaml")
    _expect("currency" not in transaction["properties"], "FinancialTransaction declares a currency now")
    transaction["properties"]["currency"] = {"$ref": "../common/CurrencyCode.yaml"}


_PAGED_OPERATIONS = (
    ("/rights/assigned", "get"), ("/rights/specs", "get"), ("/rates", "get"), ("/places", "get"),
    ("/sessions", "get"), ("/observations", "get"), ("/quotes", "get"),
)


def _paging_parameters(documents: Documents) -> None:
    paths = _doc(documents, ROOT_DOCUMENT)["paths"]
    parameters = [
        {"in": "query", "name": "offset", "schema": {"type": "integer", "minimum": 0},
         "description": "Index of the first item wanted (meta.offset of the answer)"},
        {"in": "query", "name": "pageSize", "schema": {"type": "integer", "minimum": 1},
         "description": "Items wanted per page (the answer's meta.pageSize may be smaller)"},
        {"in": "query", "name": "referenceInstant", "schema": {"type": "integer", "minimum": 0},
         "description": "meta.referenceInstant of the first page, sent back for offset > 0"},
    ]
    for path, method in _PAGED_OPERATIONS:
        operation = paths[path][method]
        names = {p.get("name") for p in operation.get("parameters", ()) if isinstance(p, dict)}
        _expect(not names & {"offset", "pageSize", "referenceInstant"}, f"{method.upper()} {path} declares paging now")
        operation.setdefault("parameters", []).extend(copy.deepcopy(parameters))


PATCHES: tuple[Patch, ...] = (
    Patch("linked-right-time-relative",
          "LinkedRightSpecification.yaml refers to ./AssignedRightTimeRelative.yaml; the file is "
          "AssignedTimeRelative.yaml (an unresolvable reference: strict tools refuse the document).",
          _linked_right_time_relative),
    Patch("vehicle-ancillary-identification",
          "Session.yaml refers to ../common/VehicleAncilliaryIdentification.yaml (misspelt); the file is "
          "VehicleAncillaryIdentification.yaml.",
          _vehicle_ancillary_identification),
    Patch("boolean-default",
          "EventSubscription.includeChildrenEvents is a boolean with the string default 'false'.",
          _boolean_default),
    Patch("reference-has-two-properties",
          "Reference requires both `className` and `id` but allows at most one property "
          "(maxProperties: 1, minProperties: 1): no value can satisfy it, so no credential, subscription "
          "scope or space id could ever validate. The required pair is what its description says.",
          _reference_has_two_properties),
    Patch("hierarchy-element-by-type",
          "HierarchyElementData is a oneOf of Campus, Place, SubplaceElement, IdentifiedArea, Space and "
          "two IdentifiedArea specialisations, none closed to extra properties: every Place is also a valid "
          "Campus and IdentifiedArea, so the oneOf never holds. Each alternative is tied to the element "
          "`type` (HierarchyElementTypeEnum) it stands for, and the set becomes an anyOf (the two "
          "IdentifiedArea specialisations still overlap their parent).",
          _hierarchy_element_by_type),
    Patch("subplace-element-type",
          "SubplaceElement redefines `type` as ElementDescriptorEnum (floorOrLevel, row, street) inside an "
          "allOf with HierarchyElementGeneral, whose `type` is HierarchyElementTypeEnum: the two enums share "
          "no value, so no SubplaceElement (no level of a car park) could validate. The general `type` "
          "(`subplaceElement`) stands.",
          _subplace_element_type),
    Patch("holder-credential-any-of",
          "HolderCredential is a oneOf of VehicleCredential, CustomerCredential and OtherCredential, which "
          "are the same schema (each is CredentialAssigned): every credential matches all three, so the "
          "oneOf never holds and no session or assigned right with credentials could validate.",
          _holder_credential_any_of),
    Patch("reference-to-quote",
          "ReferenceToQuote is a oneOf of ReferenceQuoteExtension and ReferenceQuoteNew, the same schema "
          "with nothing required: every object is both (so no reference ever validates), and since every "
          "AssignedRight is then a ReferenceToQuote too, POST and PUT /rights/assigned (a oneOf of the two) "
          "accept nothing either. A reference to a quote needs the quote response and option it names.",
          _reference_to_quote),
    Patch("readme-statuses",
          "The README says every call answers 401 without a known X-MCC-Access-Token, 403 without the "
          "privileges, 429 when throttled, and a create 409 for an identifier that is taken; the operations "
          "declare none of these (a platform that follows the README could never conform), and some reads "
          "by id (GET /places/{id}, GET /webhooks/{id}) declare no 404 where the others do. Declared, each "
          "a ResponseStatus, as the document's other error answers are.",
          _readme_statuses),
    Patch("segment-financial-transactions",
          "FinancialTransaction.yaml says each Segment has its own financial data and the sessions `expand` "
          "parameter names `segments.financialTransactions`, but Segment.yaml declares no such property "
          "(FinancialTransaction is referenced from nowhere). Declared as the array both describe.",
          _segment_financial_transactions),
    Patch("financial-transaction-currency",
          "FinancialTransaction's description lists the currency among the minimum data of a segment's "
          "financial transaction, but no property carries it (segmentValue is a bare number). Declared as "
          "`currency`, an ISO 4217 code (CurrencyCode.yaml).",
          _financial_transaction_currency),
    Patch("paging-parameters",
          "Every list answer carries PaginatedListMeta (offset, pageSize, total, referenceInstant: 'to be "
          "used as reference for offset > 0 ... as returned by server on first call'), yet no list "
          "operation declares how a client asks for a page. Declared as query parameters named after the "
          "meta fields they echo, so that requests for further pages validate.",
          _paging_parameters),
)


def read_documents(spec_dir: Path = SPEC_DIR) -> Documents:
    """Every YAML file of the modular document, as published."""
    documents: Documents = {}
    for path in sorted((spec_dir / "api").rglob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            # as openapi-core's own reader loads YAML (no dates or YAML 1.1 booleans made of strings)
            documents[path.relative_to(spec_dir).as_posix()] = yaml.load(stream, JsonschemaSafeLoader)
    return documents


@cache
def load_documents() -> Documents:
    """The modular document with `PATCHES` applied (read once per process; do not mutate)."""
    documents = read_documents()
    for patch in PATCHES:
        patch.apply(documents)
    return documents
