"""Practices and patients as lists (names for the other views, the scheduler's work list)."""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, rows_as
from domain.patients import Patient
from domain.practices import Practice
from projections.base import Projection, handles, iso


class PatientRow(TypedDict):
    """A row of ``patients``: one patient as registered from the PMS."""

    id: str
    practice_id: str
    pms_patient_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    guarantor_id: str | None
    registered_at: str


PATIENT_COLUMNS = columns_of(PatientRow)


class Directory(Projection):
    name = "directory"
    tables = ("practices", "patients")
    ddl = (
        """CREATE TABLE IF NOT EXISTS practices (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            timezone TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS patients (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            pms_patient_id TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            email TEXT,
            phone TEXT,
            guarantor_id TEXT,
            registered_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS patients_by_practice ON patients "
        "(practice_id, last_name, first_name, id)",
    )

    @handles(Practice.Created)
    def practice_created(self, tx: Tx, e: Practice.Created, position: int) -> None:
        tx.execute(
            "INSERT INTO practices (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
            (str(e.practice_id), e.name, e.timezone, iso(e.at)),
        )

    @handles(Patient.Registered)
    def patient_registered(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO patients (id, practice_id, pms_patient_id, first_name, last_name, "
            "email, phone, guarantor_id, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                e.pms_patient_id,
                e.first_name,
                e.last_name,
                e.email,
                e.phone,
                str(e.guarantor_id) if e.guarantor_id else None,
                iso(e.at),
            ),
        )


def practice_ids(db: Database) -> list[UUID]:
    return [UUID(r["id"]) for r in db.query("SELECT id FROM practices ORDER BY created_at")]


def list_patients(
    db: Database, practice_id: UUID, after: tuple[str, str, str] | None, limit: int
) -> list[PatientRow]:
    sql = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE practice_id = ?"  # noqa: S608
    params: list[Any] = [str(practice_id)]
    if after:
        sql += " AND (last_name, first_name, id) > (?, ?, ?)"
        params.extend(after)
    sql += " ORDER BY last_name, first_name, id LIMIT ?"
    params.append(limit)
    return rows_as(PatientRow, db.query(sql, params))


def find_patients(db: Database, practice_id: UUID, words: str, limit: int) -> list[PatientRow]:
    """Patients whose name (first, last, or both in either order) or PMS id has every word
    typed, by last name."""
    sql = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE practice_id = ?"  # noqa: S608
    params: list[Any] = [str(practice_id)]
    for word in words.lower().split()[:5]:
        like = "%" + word.replace("%", "").replace("_", "") + "%"
        sql += " AND (LOWER(first_name) LIKE ? OR LOWER(last_name) LIKE ? OR pms_patient_id = ?)"
        params.extend([like, like, word])
    sql += " ORDER BY last_name, first_name, id LIMIT ?"
    params.append(limit)
    return rows_as(PatientRow, db.query(sql, params))
