"""The revisions, one file each, named ``NNNN_slug.py`` with revision ``"NNNN"`` (docs/design.md,
Migrations). Alembic loads them by path; nothing imports them."""
