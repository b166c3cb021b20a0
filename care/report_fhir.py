"""The clinic report as a FHIR R4 bundle (FHIR 4.3, ``fhir.resources.R4B``).

Owns: turning the sessions (treatment record, device-measured) and the diary
(patient-reported) into a ``collection`` Bundle and validating it with
``fhir.resources``: a Patient (known only by the pad's serial; with no serial, by
nothing: never by a placeholder two pads would share), the Device, the
prescription as a ServiceRequest, a DeviceUseStatement per session, a
QuestionnaireResponse per nightly entry and per IRLS (item numbers and scores only:
the IRLS wording is licensed), and an Observation per IRLS total ``derivedFrom`` its
response. The local code systems and extensions (``care.fhir_codes``) are documented
in docs/course.md, "FHIR bundle". Each entry's ``fullUrl`` is ``urn:uuid:`` of a
uuid5 of its content, so the same record gives the same bundle (only the timestamp
differs). Superseded diary entries are left out.

R4B, not the package's default R5: R5 replaced DeviceUseStatement by DeviceUsage,
and clinics' systems speak R4; 4.3 is R4's maintenance release with the same resources.

Does not own choosing the period or reading the stores (``nirpad report``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any, Final

from care import fhir_codes as codes
from care.diary import StoredIrls, StoredNightly
from care.diary_entry import NIGHTLY_FIELDS
from profiles.schema import Profile
from safety.records import Outcome, SessionRecord

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

__all__ = ["fhir_bundle", "fhir_bundle_json", "parse_bundle"]

Json = dict[str, Any]
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, codes.BASE)
_STATUS: Final = {
    Outcome.COMPLETED: "completed",
    Outcome.STOPPED: "stopped",
    Outcome.FAULT: "stopped",
    Outcome.POWER_LOST: "stopped",
}


def fhir_bundle(
    sessions: Sequence[SessionRecord],
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    *,
    rx: Profile,
    device_serial: str | None,
    software_version: str,
    generated_at: datetime,
    zone: tzinfo,
    signature: str | None = None,
) -> Json:
    """The bundle as JSON-ready data, validated (a ``pydantic.ValidationError`` here
    is a bug of ours). ``device_serial`` None (the pad's serial is unknown) leaves the
    Patient and the Device without an identifier, so a clinic's system cannot merge two
    pads' patients under one. Raises ValueError for a naive ``generated_at`` or an
    empty serial or version."""
    if generated_at.utcoffset() is None:
        raise ValueError("generated_at must carry a time zone")
    if device_serial == "" or not software_version:
        raise ValueError("the device serial and software version must not be empty")
    builder = _Builder(zone)
    patient = builder.add(_patient(device_serial))
    device = builder.add(_device(device_serial, software_version, patient))
    prescription = builder.add(_service_request(rx, patient, signature))
    for session in sorted(sessions, key=lambda s: (s.started_at, s.id)):
        based_on = prescription if _under(rx, session) else None
        builder.add(_device_use(session, zone, patient, device, based_on))
    for entry in nightly:
        if entry.superseded_by is None:
            builder.add(_nightly_response(entry, zone, patient))
    for score in irls:
        if score.superseded_by is None:
            response = builder.add(_irls_response(score, zone, patient))
            builder.add(_irls_total(score, zone, patient, response))
    bundle = builder.bundle(generated_at)
    _bundle_model().model_validate(bundle)
    return bundle


def fhir_bundle_json(
    sessions: Sequence[SessionRecord],
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    *,
    rx: Profile,
    device_serial: str | None,
    software_version: str,
    generated_at: datetime,
    zone: tzinfo,
    signature: str | None = None,
) -> str:
    """``fhir_bundle`` as indented JSON text (UTF-8 safe, ends with a newline)."""
    bundle = fhir_bundle(
        sessions,
        nightly,
        irls,
        rx=rx,
        device_serial=device_serial,
        software_version=software_version,
        generated_at=generated_at,
        zone=zone,
        signature=signature,
    )
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def parse_bundle(text: str | bytes) -> Bundle:
    """A bundle read back and validated; raises ``pydantic.ValidationError``."""
    return _bundle_model().model_validate_json(text)


def _bundle_model() -> type[Bundle]:
    """fhir.resources' Bundle, imported only when a bundle is made or read (its
    import takes a tenth of a second that no other command should pay)."""
    from fhir.resources.R4B.bundle import Bundle

    return Bundle


class _Builder:
    """Collects entries; each gets a uuid5 of its content as id and ``fullUrl``."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.entries: list[Json] = []

    def add(self, resource: Json) -> str:
        content = json.dumps(resource, sort_keys=True, separators=(",", ":"))
        uid = str(uuid.uuid5(_NAMESPACE, content))
        full_url = f"urn:uuid:{uid}"
        body = {"resourceType": resource["resourceType"], "id": uid, **resource}
        self.entries.append({"fullUrl": full_url, "resource": body})
        return full_url

    def bundle(self, generated_at: datetime) -> Json:
        urls = "\n".join(entry["fullUrl"] for entry in self.entries)
        return {
            "resourceType": "Bundle",
            "identifier": {
                "system": codes.ID_REPORT,
                "value": f"urn:uuid:{uuid.uuid5(_NAMESPACE, urls)}",
            },
            "type": "collection",
            "timestamp": _when(generated_at, self.zone),
            "entry": self.entries,
        }


def _ref(full_url: str) -> Json:
    return {"reference": full_url}


def _when(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).isoformat(timespec="seconds")


def _day(day: date) -> str:
    return day.isoformat()


def _patient(serial: str | None) -> Json:
    patient: Json = {"resourceType": "Patient"}
    if serial is not None:
        patient["identifier"] = [{"system": codes.ID_PATIENT_BY_SERIAL, "value": serial}]
    return patient


def _device(serial: str | None, version: str, patient: str) -> Json:
    device: Json = {"resourceType": "Device"}
    if serial is not None:
        device["identifier"] = [{"system": codes.ID_DEVICE_SERIAL, "value": serial}]
        device["serialNumber"] = serial
    return device | {
        "status": "active",
        "deviceName": [{"name": codes.DEVICE_NAME, "type": "user-friendly-name"}],
        "version": [{"type": {"text": "software"}, "value": version}],
        "patient": _ref(patient),
    }


def _service_request(rx: Profile, patient: str, signature: str | None) -> Json:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": codes.ID_PRESCRIPTION, "value": rx.id}],
        "status": "active",
        "intent": "order",
        "code": {"coding": [codes.coding(codes.CS_COURSE, "nir-course")], "text": rx.name},
        "subject": _ref(patient),
        "occurrenceTiming": {
            "repeat": {
                "boundsDuration": codes.quantity(rx.course_weeks, "wk"),
                "frequency": rx.sessions_per_week,
                "period": 1,
                "periodUnit": "wk",
                "duration": rx.duration_min,
                "durationUnit": "min",
            }
        },
        "authoredOn": _day(rx.issued),
        "requester": {"display": rx.prescriber},
        "note": [{"text": codes.prescription_note(rx, signature)}],
    }


def _under(rx: Profile, session: SessionRecord) -> bool:
    """Whether the session ran under ``rx`` (its id, on or after its issue date: the
    course's own rule, ``care.course``)."""
    issued = datetime.combine(rx.issued, time.min, UTC)
    return session.profile_id == rx.id and session.started_at >= issued


def _device_use(
    session: SessionRecord, zone: tzinfo, patient: str, device: str, based_on: str | None
) -> Json:
    period = {"start": _when(session.started_at, zone)}
    if session.ended_at is not None:
        period["end"] = _when(session.ended_at, zone)
    resource: Json = {
        "resourceType": "DeviceUseStatement",
        "meta": codes.tag(codes.DEVICE_MEASURED),
        "extension": codes.session_extensions(session),
        "identifier": [{"system": codes.ID_SESSION, "value": str(session.id)}],
    }
    if based_on is not None:
        resource["basedOn"] = [_ref(based_on)]
    return resource | {
        "status": "active" if session.outcome is None else _STATUS[session.outcome],
        "subject": _ref(patient),
        "timingPeriod": period,
        "recordedOn": period.get("end", period["start"]),
        "device": _ref(device),
        "note": [{"text": codes.session_note(session)}],
    }


def _response(
    questionnaire: str, id_system: str, entry_id: int, recorded_at: datetime, zone: tzinfo
) -> Json:
    return {
        "resourceType": "QuestionnaireResponse",
        "meta": codes.tag(codes.PATIENT_REPORTED),
        "identifier": {"system": id_system, "value": str(entry_id)},
        "questionnaire": questionnaire,
        "status": "completed",
        "authored": _when(recorded_at, zone),
    }


def _answered(link_id: str, answers: list[Json], text: str | None = None) -> Json:
    item: Json = {"linkId": link_id}
    if text is not None:
        item["text"] = text
    return item | {"answer": answers}


def _nightly_response(stored: StoredNightly, zone: tzinfo, patient: str) -> Json:
    entry = stored.entry
    items = [_answered("entry-date", [{"valueDate": _day(entry.entry_date)}], "Date")]
    for spec in NIGHTLY_FIELDS:
        value = getattr(entry, spec.name)
        if value is not None:
            items.append(_answered(spec.name, [{"valueInteger": value}], spec.question))
    if entry.side_effects:
        effects = [{"valueCoding": codes.side_effect(e)} for e in sorted(entry.side_effects)]
        items.append(_answered("side_effects", effects, "Side effects"))
    if entry.note:
        items.append(_answered("note", [{"valueString": entry.note}], "Note"))
    response = _response(codes.Q_NIGHTLY, codes.ID_NIGHTLY, stored.id, stored.recorded_at, zone)
    return response | {"subject": _ref(patient), "source": _ref(patient), "item": items}


def _irls_response(stored: StoredIrls, zone: tzinfo, patient: str) -> Json:
    items = [_answered("entry-date", [{"valueDate": _day(stored.entry_date)}])]
    items += [_answered(str(k), [{"valueInteger": v}]) for k, v in stored.items.items()]
    response = _response(codes.Q_IRLS, codes.ID_IRLS, stored.id, stored.recorded_at, zone)
    return response | {"subject": _ref(patient), "source": _ref(patient), "item": items}


def _irls_total(stored: StoredIrls, zone: tzinfo, patient: str, response: str) -> Json:
    return {
        "resourceType": "Observation",
        "meta": codes.tag(codes.PATIENT_REPORTED),
        "identifier": [{"system": codes.ID_IRLS, "value": str(stored.id)}],
        "status": "final",
        "category": [{"coding": [codes.SURVEY]}],
        "code": {"coding": [codes.coding(codes.CS_COURSE, "irls-total")], "text": "IRLS total"},
        "subject": _ref(patient),
        "effectiveDateTime": _day(stored.entry_date),
        "issued": _when(stored.recorded_at, zone),
        "performer": [_ref(patient)],
        "valueInteger": stored.total,
        "interpretation": [codes.band(stored.band)],
        "component": [
            {
                "code": {"coding": [codes.coding(codes.CS_COURSE, "irls-baseline")]},
                "valueBoolean": stored.baseline,
            }
        ],
        "derivedFrom": [_ref(response)],
    }
