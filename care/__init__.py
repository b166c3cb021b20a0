"""The course of treatment: adherence, the symptom diary, reminders and the clinic report.

Reads the prescription (``profiles``) and the dose ledger through the safety layer's
read-only records; never commands light and never writes the ledger (docs/course.md).
"""
