"""Alembic migrations for every OfferSeal table (one history; services may share a database)."""
