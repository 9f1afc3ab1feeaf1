"""Validation of resources against the R4 definitions: elements, JSON types, cardinality,
primitive formats and required bindings. Each refusal is an OperationOutcome whose first issue
names the element in `expression`, and nothing is written.

  unknown element, wrong JSON type, array where one value belongs (or the reverse): 400 structure
  a primitive in the wrong format:                                                  400 value
  a required element missing:                                                       422 required
  a code outside its required value set:                                            422 code-invalid
"""
from decimal import Decimal

import pytest

from conftest import (DEFAULT, FHIR_JSON, assert_nothing_written, assert_outcome, dumps, observation,
                      patient)

# Every concrete resource type of FHIR R4 (4.0.1): the codes of the resource-types code system
# without the abstract Resource and DomainResource.
R4_RESOURCE_TYPES = [
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
    "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
    "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
    "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
    "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
    "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
    "DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest",
    "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable",
    "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
    "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
    "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
    "InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure",
    "MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense",
    "MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct",
    "MedicinalProductAuthorization", "MedicinalProductContraindication",
    "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
    "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader",
    "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition",
    "OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation",
    "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition",
    "Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
    "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
    "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
    "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
    "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
    "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
    "TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
]
assert len(R4_RESOURCE_TYPES) == 146

INTERACTIONS = {"read", "vread", "update", "delete", "history-instance", "history-type", "create"}


def without(resource, *keys):
    return {k: v for k, v in resource.items() if k not in keys}


# (name, body, status, code, expression)
REFUSED = [
    # structure: unknown elements
    ("unknown element", patient(foo=1), 400, "structure", "Patient.foo"),
    ("unknown element, case differs", patient(BirthDate="2000-01-01"), 400, "structure",
     "Patient.BirthDate"),
    ("unknown nested element", patient(name=[{"family": "x", "surname": "y"}]), 400, "structure",
     "Patient.name[0].surname"),
    ("element of another type", observation(gender="male"), 400, "structure",
     "Observation.gender"),
    ("unknown primitive extension target", patient(_foo={"id": "a"}), 400, "structure", None),
    # structure: wrong JSON types
    ("boolean as a string", patient(active="true"), 400, "structure", "Patient.active"),
    ("boolean as a number", patient(active=1), 400, "structure", "Patient.active"),
    ("string as a number", patient(birthDate=19800229), 400, "structure", "Patient.birthDate"),
    ("string as an object", patient(name=[{"family": {"text": "x"}}]), 400, "structure",
     "Patient.name[0].family"),
    ("complex type as a string", patient(maritalStatus="married"), 400, "structure",
     "Patient.maritalStatus"),
    ("null for a single element", patient(active=None), 400, "structure", "Patient.active"),
    ("integer as a string", patient(multipleBirthInteger="2"), 400, "structure",
     "Patient.multipleBirth.ofType(integer)"),
    # structure: cardinality of JSON shape
    ("array for a single element", patient(birthDate=["1980-02-29"]), 400, "structure",
     "Patient.birthDate"),
    ("object for an array element", patient(name={"family": "x"}), 400, "structure",
     "Patient.name"),
    ("string for an array of strings", patient(name=[{"family": "x", "given": "y"}]), 400,
     "structure", "Patient.name[0].given"),
    ("two types for one choice element", observation(valueString="72.5 kg"), 400, "structure",
     None),
    # value: primitive formats
    ("date with month 13", patient(birthDate="2024-13-01"), 400, "value", "Patient.birthDate"),
    ("date in another format", patient(birthDate="01/02/2000"), 400, "value",
     "Patient.birthDate"),
    ("dateTime without seconds", patient(deceasedDateTime="2020-01-01T10:00Z"), 400, "value",
     None),
    ("uri with a space", patient(implicitRules="http://example.org/a rule"), 400, "value",
     "Patient.implicitRules"),
    # JSON has no empty strings in FHIR: a rule of the representation, so "structure"
    ("empty string", patient(name=[{"family": ""}]), 400, "structure", "Patient.name[0].family"),
    ("id with an underscore in a contained resource", patient(contained=[
        {"resourceType": "Organization", "id": "a_b", "name": "x"}]), 400, "value", None),
    ("decimal as text in quantity", observation(valueQuantity={"value": "72.5"}), 400,
     "structure", None),
    # required elements
    ("missing Observation.status", without(observation(), "status"), 422, "required",
     "Observation.status"),
    ("missing Observation.code", without(observation(), "code"), 422, "required",
     "Observation.code"),
    ("missing nested required element", patient(link=[{"type": "seealso"}]), 422, "required",
     "Patient.link[0].other"),
    # required bindings
    ("gender outside its value set", patient(gender="x"), 422, "code-invalid", "Patient.gender"),
    ("gender in the wrong case", patient(gender="Female"), 422, "code-invalid",
     "Patient.gender"),
    ("observation status outside its value set", observation(status="bogus"), 422,
     "code-invalid", "Observation.status"),
    ("nested code outside its value set",
     patient(telecom=[{"system": "pager-ish", "value": "555"}]), 422, "code-invalid",
     "Patient.telecom[0].system"),
]


@pytest.mark.parametrize("name,body,status,code,expression", REFUSED,
                         ids=[case[0] for case in REFUSED])
def test_invalid_resources_are_refused(client, name, body, status, code, expression):
    before = client.last_change()
    rtype = body["resourceType"]
    assert_outcome(client.post(rtype, body), status, code, expression=expression)
    r = client.put(f"{rtype}/validation-case", dict(body, id="validation-case"))
    assert_outcome(r, status, code, expression=expression)
    assert_nothing_written(client, before)
    assert client.get(f"{rtype}/validation-case").status == 404


def test_an_invalid_update_leaves_the_current_version(client):
    r = client.post("Patient", patient())
    assert r.status == 201, r
    pid = r.json["id"]
    before = client.last_change()
    assert_outcome(client.put(f"Patient/{pid}", patient(id=pid, gender="x")), 422,
                   "code-invalid", expression="Patient.gender")
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{pid}").json == r.json


def test_every_issue_is_reported(client):
    body = patient(foo=1, gender="x", birthDate="2024-13-01")
    r = client.post("Patient", body)
    # a malformed resource (400) outranks a broken rule (422)
    assert r.status == 400, r
    expressions = [i.get("expression", [None])[0] for i in r.json["issue"]]
    assert set(expressions) >= {"Patient.foo", "Patient.gender", "Patient.birthDate"}
    assert all(i["severity"] in ("error", "fatal") for i in r.json["issue"])


ACCEPTED = [
    ("primitive extension",
     patient(_birthDate={"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/"
                                               "patient-birthTime",
                                        "valueDateTime": "1980-02-29T14:35:45-05:00"}]})),
    ("primitive extension without a value",
     patient(birthDate=None, _birthDate={"extension": [
         {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
          "valueCode": "unknown"}]})),
    ("aligned arrays with null",
     patient(name=[{"family": "x", "given": ["a", None], "_given": [None, {"extension": [
         {"url": "http://example.org/ext", "valueString": "b"}]}]}])),
    ("choice types", without(observation(valueString="present",
                                         effectiveDateTime="2021-03-04T05:06:07Z"),
                             "valueQuantity")),
    ("contained resource", patient(contained=[{"resourceType": "Organization", "id": "org1",
                                               "name": "Clinic"}],
                                   managingOrganization={"reference": "#org1"})),
    ("narrative", patient(text={"status": "generated",
                                "div": '<div xmlns="http://www.w3.org/1999/xhtml">Hi</div>'})),
    ("modifier extension", patient(modifierExtension=[{"url": "http://example.org/m",
                                                       "valueBoolean": False}])),
    ("exponent decimal", observation(valueQuantity={"value": Decimal("1.5E+3"), "unit": "g"})),
    ("partial dates", patient(birthDate="1980")),
    ("dateTime with offset", observation(effectiveDateTime="2021-03-04T05:06:07.123+05:30")),
]


@pytest.mark.parametrize("name,body", ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_valid_resources_are_accepted(client, name, body):
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post(body["resourceType"], dumps(body).encode(),
                    headers={"Content-Type": FHIR_JSON})
    assert r.status == 201, r
    stored = dict(r.json)
    for key in ("id", "meta"):
        stored.pop(key)
    assert stored == {k: v for k, v in body.items() if k not in ("id", "meta")}


def test_capability_statement_lists_every_r4_resource_type(client):
    cs = client.get("metadata").json
    listed = [res["type"] for res in cs["rest"][0]["resource"]]
    missing = sorted(set(R4_RESOURCE_TYPES) - set(listed))
    extra = sorted(set(listed) - set(R4_RESOURCE_TYPES))
    assert not missing, f"not in the CapabilityStatement: {missing}"
    assert not extra, f"not R4 resource types: {extra}"
    for res in cs["rest"][0]["resource"]:
        if res["type"] == "AuditEvent":  # the audit trail: read-only (test_audit.py)
            continue
        assert {i["code"] for i in res["interaction"]} >= INTERACTIONS, res["type"]


def test_every_r4_resource_type_is_served(server, client):
    refused = []
    auditor = server.auditor_token()  # the audit trail is read with system/AuditEvent.rs
    for name in R4_RESOURCE_TYPES:
        r = client.get(f"{name}/type-probe", auth=auditor if name == "AuditEvent" else DEFAULT)
        if r.status != 404 or "is not known" not in r.json["issue"][0]["diagnostics"]:
            refused.append(name)
        h = client.get(f"{name}/_history?_count=1")
        if h.status != 200 and name != "AuditEvent":  # the audit trail has no history
            refused.append(name + " (history)")
    assert not refused, f"resource types the server does not serve: {refused}"


def test_abstract_types_are_not_resource_types(client):
    for name in ("Resource", "DomainResource", "Element", "HumanName", "string"):
        assert_outcome(client.get(f"{name}/1"), 404, "not-found")
        r = client.post(name, {"resourceType": name})
        assert r.status in (400, 404), r
