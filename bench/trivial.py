"""The stack's floor for `make bench-http`: a FastAPI POST endpoint with a pydantic body
and nothing behind it, served by the same server with the same settings as payledger."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Card(BaseModel):
    number: str
    exp_month: int
    exp_year: int
    cvc: str


class Collect(BaseModel):
    method: str
    amount: int
    card: Card | None = None


app = FastAPI()


@app.post("/v1/payments", status_code=201)
def collect(body: Collect) -> dict[str, object]:
    return {"status": "approved", "amount": body.amount, "method": body.method}


@app.get("/v1/transactions")
def transactions() -> dict[str, object]:
    return {"items": [], "next_cursor": None}
