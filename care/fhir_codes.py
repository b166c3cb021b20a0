"""nirpad's local FHIR vocabulary: code systems, extensions, identifiers, questionnaires.

Owns: the URIs under ``https://nirpad.invalid/fhir/`` (``.invalid`` is reserved by
RFC 2606 and never resolves: these are names, not pages; a clinic's integration maps
them) and the small builders for codings, tags, quantities and the notes a
clinician reads. Every URI and code here is listed in docs/course.md, "FHIR bundle";
changing one is a change to the report's format.

No LOINC code exists for the IRLS total, so it has a local code (``irls-total``).

Does not own the bundle itself (``care.report_fhir``).
"""

from __future__ import annotations

from typing import Any, Final

from care.diary_entry import SideEffect
from care.irls import Band
from profiles.schema import Profile
from safety.records import SessionRecord

Json = dict[str, Any]

BASE: Final = "https://nirpad.invalid/fhir"
UCUM: Final = "http://unitsofmeasure.org"

CS_COURSE: Final = f"{BASE}/CodeSystem/course"
CS_SESSION_OUTCOME: Final = f"{BASE}/CodeSystem/session-outcome"
CS_FAULT: Final = f"{BASE}/CodeSystem/fault-code"
CS_IRLS_BAND: Final = f"{BASE}/CodeSystem/irls-band"
CS_SIDE_EFFECT: Final = f"{BASE}/CodeSystem/side-effect"
CS_DATA_SOURCE: Final = f"{BASE}/CodeSystem/data-source"

EXT_OUTCOME: Final = f"{BASE}/StructureDefinition/session-outcome"
EXT_FAULT: Final = f"{BASE}/StructureDefinition/session-fault"
EXT_PLANNED: Final = f"{BASE}/StructureDefinition/planned-fluence"
EXT_DELIVERED: Final = f"{BASE}/StructureDefinition/delivered-fluence"

ID_PATIENT_BY_SERIAL: Final = f"{BASE}/NamingSystem/patient-by-device-serial"
ID_DEVICE_SERIAL: Final = f"{BASE}/NamingSystem/device-serial"
ID_PRESCRIPTION: Final = f"{BASE}/NamingSystem/prescription"
ID_SESSION: Final = f"{BASE}/NamingSystem/ledger-session"
ID_NIGHTLY: Final = f"{BASE}/NamingSystem/diary-nightly"
ID_IRLS: Final = f"{BASE}/NamingSystem/diary-irls"
ID_REPORT: Final = f"{BASE}/NamingSystem/report"

Q_NIGHTLY: Final = f"{BASE}/Questionnaire/nightly"
Q_IRLS: Final = f"{BASE}/Questionnaire/irls"

DEVICE_NAME: Final = "nirpad near-infrared leg pad"
DEVICE_MEASURED: Final = "device-measured"
PATIENT_REPORTED: Final = "patient-reported"

DISPLAY: Final[dict[str, dict[str, str]]] = {
    CS_COURSE: {
        "nir-course": "Course of near-infrared light sessions",
        "irls-total": "IRLS total score (0-40)",
        "irls-baseline": "Baseline IRLS, taken before the first session",
    },
    CS_SESSION_OUTCOME: {
        "completed": "Completed",
        "stopped": "Stopped before the end",
        "fault": "Ended by a fault",
        "power_lost": "Ended by a power loss",
        "running": "Still running when the report was made",
    },
    CS_IRLS_BAND: {
        "none": "None (0)",
        "mild": "Mild (1-10)",
        "moderate": "Moderate (11-20)",
        "severe": "Severe (21-30)",
        "very-severe": "Very severe (31-40)",
    },
    CS_DATA_SOURCE: {
        DEVICE_MEASURED: "Measured and recorded by the device",
        PATIENT_REPORTED: "Reported by the patient in the diary",
    },
    CS_SIDE_EFFECT: {
        "warmth": "Warmth",
        "redness": "Redness",
        "skin-irritation": "Skin irritation",
        "headache": "Headache",
        "other": "Other",
    },
}
SURVEY: Final[Json] = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "survey",
    "display": "Survey",
}


def coding(system: str, code: str) -> Json:
    """A Coding of one of our systems, with its display when we have one."""
    found = DISPLAY.get(system, {}).get(code)
    return {"system": system, "code": code} | ({} if found is None else {"display": found})


def tag(source: str) -> Json:
    """``meta`` marking a resource device-measured or patient-reported."""
    return {"tag": [coding(CS_DATA_SOURCE, source)]}


def quantity(value: float, unit: str) -> Json:
    """A UCUM quantity (``J/cm2``, ``wk``)."""
    shown = "J/cm²" if unit == "J/cm2" else unit
    return {"value": value, "unit": shown, "system": UCUM, "code": unit}


def band(value: Band) -> Json:
    """An IRLS severity band as an Observation interpretation."""
    return {
        "coding": [coding(CS_IRLS_BAND, value.value.replace(" ", "-"))],
        "text": value.value,
    }


def side_effect(value: SideEffect) -> Json:
    return coding(CS_SIDE_EFFECT, value.value)


def outcome_code(session: SessionRecord) -> str:
    return "running" if session.outcome is None else str(session.outcome)


def session_extensions(session: SessionRecord) -> list[Json]:
    """The outcome, fault (if any) and planned and delivered fluence of a session."""
    extensions: list[Json] = [
        {"url": EXT_OUTCOME, "valueCoding": coding(CS_SESSION_OUTCOME, outcome_code(session))}
    ]
    if session.fault_code:
        extensions.append({"url": EXT_FAULT, "valueCoding": coding(CS_FAULT, session.fault_code)})
    extensions += [
        {"url": EXT_PLANNED, "valueQuantity": _fluence(session.planned_fluence_total_j_cm2)},
        {"url": EXT_DELIVERED, "valueQuantity": _fluence(session.delivered_fluence_total_j_cm2)},
    ]
    return extensions


def _fluence(j_cm2: float) -> Json:
    return quantity(round(j_cm2, 3), "J/cm2")


def session_note(session: SessionRecord) -> str:
    """One sentence a clinician reads: prescription, outcome and dose."""
    outcome = DISPLAY[CS_SESSION_OUTCOME][outcome_code(session)]
    fault = f" (fault: {session.fault_code})" if session.fault_code else ""
    return (
        f"Prescription {session.profile_id}. {outcome}{fault}. "
        f"{session.delivered_fluence_total_j_cm2:.1f} of "
        f"{session.planned_fluence_total_j_cm2:.1f} J/cm² delivered (device-measured)."
    )


def prescription_note(rx: Profile, signature: str | None) -> str:
    """The prescription's terms in one paragraph."""
    channels = ", ".join(
        f"{c.wavelength_nm} nm at {c.irradiance_mw_cm2:g} mW/cm²" for c in rx.channels
    )
    window = "any time" if rx.window is None else f"{rx.window.start}-{rx.window.end} local time"
    return (
        f"Prescription {rx.id} by {rx.prescriber}, issued {rx.issued.isoformat()}, "
        f"valid before {rx.expires.isoformat()}; signature: {signature or 'not stated'}. "
        f"{rx.sessions_per_week} sessions a week for {rx.course_weeks} weeks, "
        f"{rx.duration_min} min each ({channels}; {rx.mode.kind}), "
        f"{rx.planned_fluence_total_j_cm2:.1f} J/cm² planned per session; "
        f"window {window}; at least {rx.min_interval_h:g} h between sessions."
    )
