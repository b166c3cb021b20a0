"""The clinic report's FHIR bundle: built from the real stores, serialised, parsed back
and validated with fhir.resources (R4B), and its figures checked."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from care import fhir_codes as codes
from care.report_fhir import fhir_bundle, fhir_bundle_json, parse_bundle
from tests.care.course_fixture import BERLIN, IRLS, course_profile
from tests.care.report_outputs_fixture import SESSION_COUNT, ReportInputs, write_report_inputs

SERIAL = "NP-2026-0042"
VERSION = "0.9.0"
GENERATED_AT = datetime(2026, 12, 26, 9, 30, tzinfo=UTC)
Json = dict[str, Any]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    return write_report_inputs(tmp_path_factory.mktemp("report-fhir"))


def build_json(inputs: ReportInputs, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "rx": course_profile(),
        "device_serial": SERIAL,
        "software_version": VERSION,
        "generated_at": GENERATED_AT,
        "zone": BERLIN,
        "signature": "verified",
    }
    arguments.update(overrides)
    return fhir_bundle_json(inputs.sessions, inputs.nightly, inputs.irls, **arguments)


@pytest.fixture(scope="module")
def parsed(inputs: ReportInputs) -> Bundle:
    return parse_bundle(build_json(inputs))


@pytest.fixture(scope="module")
def data(inputs: ReportInputs) -> Json:
    data: Json = json.loads(build_json(inputs))
    return data


def resources(data: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == kind]


def references(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference":
                yield inner
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def test_the_bundle_parses_back_and_validates(parsed: Bundle) -> None:
    assert parsed.type == "collection"
    kinds = Counter(entry.resource.get_resource_type() for entry in parsed.entry)
    assert kinds == {
        "Patient": 1,
        "Device": 1,
        "ServiceRequest": 1,
        "DeviceUseStatement": SESSION_COUNT,
        "QuestionnaireResponse": 15 + len(IRLS),
        "Observation": len(IRLS),
    }
    assert all(entry.fullUrl == f"urn:uuid:{entry.resource.id}" for entry in parsed.entry)


def test_every_reference_points_at_an_entry(data: Json) -> None:
    urls = {entry["fullUrl"] for entry in data["entry"]}
    assert len(urls) == len(data["entry"])
    found = list(references(data))
    assert len(found) > 100
    assert set(found) <= urls


def test_the_irls_totals_derive_from_their_responses(data: Json) -> None:
    by_url = {e["fullUrl"]: e["resource"] for e in data["entry"]}
    totals = resources(data, "Observation")
    assert [o["valueInteger"] for o in totals] == [total for _, total in IRLS]
    assert [o["effectiveDateTime"] for o in totals] == [day.isoformat() for day, _ in IRLS]
    for observation in totals:
        assert observation["code"]["coding"][0]["system"] == codes.CS_COURSE
        assert observation["code"]["coding"][0]["code"] == "irls-total"
        (derived,) = observation["derivedFrom"]
        response = by_url[derived["reference"]]
        assert response["questionnaire"] == codes.Q_IRLS
        scores = {i["linkId"]: i["answer"][0] for i in response["item"]}
        assert (
            sum(scores[str(n)]["valueInteger"] for n in range(1, 11))
            == (observation["valueInteger"])
        )
        assert scores["entry-date"]["valueDate"] == observation["effectiveDateTime"]
    bands = [o["interpretation"][0]["coding"][0]["code"] for o in totals]
    assert bands == ["severe", "moderate", "moderate", "moderate"]
    baseline = [o["component"][0]["valueBoolean"] for o in totals]
    assert baseline == [True, False, False, False]


def test_irls_responses_carry_no_item_wording(data: Json) -> None:
    irls = [
        r for r in resources(data, "QuestionnaireResponse") if r["questionnaire"] == codes.Q_IRLS
    ]
    assert len(irls) == len(IRLS)
    for response in irls:
        assert [i["linkId"] for i in response["item"]] == ["entry-date", *map(str, range(1, 11))]
        assert all("text" not in item for item in response["item"])


def test_each_session_is_a_device_use_with_its_period_and_outcome(
    inputs: ReportInputs, data: Json
) -> None:
    uses = {int(u["identifier"][0]["value"]): u for u in resources(data, "DeviceUseStatement")}
    (prescription,) = [e["fullUrl"] for e in data["entry"] if "intent" in e["resource"]]
    for session in inputs.sessions:
        use = uses[session.id]
        period = use["timingPeriod"]
        assert datetime.fromisoformat(period["start"]) == session.started_at
        extensions = {x["url"]: x for x in use["extension"]}
        delivered = extensions[codes.EXT_DELIVERED]["valueQuantity"]
        assert delivered["value"] == pytest.approx(session.delivered_fluence_total_j_cm2)
        assert delivered["code"] == "J/cm2"
        outcome = extensions[codes.EXT_OUTCOME]["valueCoding"]["code"]
        if session.ended_at is None:
            assert ("end" not in period, use["status"], outcome) == (True, "active", "running")
        else:
            assert datetime.fromisoformat(period["end"]) == session.ended_at
            assert outcome == session.outcome
        based_on = [prescription] if session.profile_id == "rls-810" else None
        found = [r["reference"] for r in use["basedOn"]] if "basedOn" in use else None
        assert found == based_on
    statuses = Counter(u["status"] for u in uses.values())
    assert statuses == {"completed": SESSION_COUNT - 3, "stopped": 2, "active": 1}


def test_a_session_of_an_earlier_issue_with_the_same_id_is_not_based_on_it(
    inputs: ReportInputs,
) -> None:
    reissued = course_profile(issued=date(2026, 11, 1))
    data = json.loads(build_json(inputs, rx=reissued))
    based = [u for u in resources(data, "DeviceUseStatement") if "basedOn" in u]
    assert len(based) == 3 + 3 + 3 + 1 + 1  # from 3 Nov: weeks 4-6, the fault, the running


def test_an_empty_record_gives_a_valid_bundle() -> None:
    text = fhir_bundle_json(
        (), [], [], rx=course_profile(), device_serial=SERIAL, software_version=VERSION,
        generated_at=GENERATED_AT, zone=BERLIN,
    )  # fmt: skip
    kinds = [e.resource.get_resource_type() for e in parse_bundle(text).entry]
    assert kinds == ["Patient", "Device", "ServiceRequest"]
    assert "signature: not stated" in text


def test_a_fault_session_names_its_fault(data: Json) -> None:
    faults = [
        x["valueCoding"]
        for use in resources(data, "DeviceUseStatement")
        for x in use["extension"]
        if x["url"] == codes.EXT_FAULT
    ]
    assert faults == [{"system": codes.CS_FAULT, "code": "skin_overtemp"}]


def test_the_device_prescription_and_time_of_the_report(data: Json) -> None:
    (device,) = resources(data, "Device")
    assert (device["serialNumber"], device["version"][0]["value"]) == (SERIAL, VERSION)
    (patient,) = resources(data, "Patient")
    assert patient["identifier"][0]["value"] == SERIAL
    (request,) = resources(data, "ServiceRequest")
    assert request["identifier"][0]["value"] == "rls-810"
    assert request["occurrenceTiming"]["repeat"]["frequency"] == 3
    assert "signature: verified" in request["note"][0]["text"]
    assert data["timestamp"] == "2026-12-26T10:30:00+01:00"


def test_the_source_of_every_record_is_tagged(data: Json) -> None:
    tags = Counter(
        e["resource"]["meta"]["tag"][0]["code"] for e in data["entry"] if "meta" in e["resource"]
    )
    assert tags == {"device-measured": SESSION_COUNT, "patient-reported": 15 + 2 * len(IRLS)}


def test_superseded_entries_are_left_out(inputs: ReportInputs, data: Json) -> None:
    nightly = [
        r for r in resources(data, "QuestionnaireResponse") if r["questionnaire"] == codes.Q_NIGHTLY
    ]
    ids = {int(r["identifier"]["value"]) for r in nightly}
    assert inputs.correction_id in ids
    assert inputs.corrected_id not in ids
    history = fhir_bundle(
        inputs.sessions,
        inputs.nightly_history,
        inputs.irls,
        rx=course_profile(),
        device_serial=SERIAL,
        software_version=VERSION,
        generated_at=GENERATED_AT,
        zone=BERLIN,
        signature="verified",
    )
    assert history == data


def test_the_same_record_gives_the_same_uuids(inputs: ReportInputs, data: Json) -> None:
    later = json.loads(build_json(inputs, generated_at=datetime(2027, 1, 2, tzinfo=UTC)))
    assert [e["fullUrl"] for e in later["entry"]] == [e["fullUrl"] for e in data["entry"]]
    assert later["identifier"] == data["identifier"]
    other = json.loads(build_json(inputs, device_serial="NP-2026-0043"))
    assert not {e["fullUrl"] for e in other["entry"]} & {e["fullUrl"] for e in data["entry"]}


def test_a_broken_bundle_fails_validation(data: Json) -> None:
    without_device = json.loads(json.dumps(data))
    use = next(e["resource"] for e in without_device["entry"] if "timingPeriod" in e["resource"])
    del use["device"]
    with pytest.raises(ValidationError, match="device"):
        parse_bundle(json.dumps(without_device))
    bad_total = json.loads(json.dumps(data))
    total = next(e["resource"] for e in bad_total["entry"] if "valueInteger" in e["resource"])
    total["valueInteger"] = "twenty-four"
    with pytest.raises(ValidationError, match="valueInteger"):
        parse_bundle(json.dumps(bad_total))


def test_a_report_time_without_a_zone_is_refused(inputs: ReportInputs) -> None:
    with pytest.raises(ValueError, match="time zone"):
        build_json(inputs, generated_at=datetime(2026, 12, 26, 9, 30))
    with pytest.raises(ValueError, match="serial"):
        build_json(inputs, device_serial="")


def test_a_pad_without_a_serial_names_no_patient_or_device_identifier(
    inputs: ReportInputs,
) -> None:
    """Two pads without a serial must not both say their patient is "not set": a clinic's
    system that matches patients by identifier would merge them into one."""
    data: Json = json.loads(build_json(inputs, device_serial=None))
    parse_bundle(json.dumps(data))  # still valid FHIR
    (patient,) = resources(data, "Patient")
    (device,) = resources(data, "Device")
    assert "identifier" not in patient
    assert "identifier" not in device and "serialNumber" not in device
    assert device["patient"] == {"reference": _full_url(data, patient)}


def _full_url(data: Json, resource: Json) -> str:
    (url,) = (e["fullUrl"] for e in data["entry"] if e["resource"] is resource)
    return str(url)


def test_an_empty_serial_is_refused_not_left_out(inputs: ReportInputs) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        build_json(inputs, device_serial="")
