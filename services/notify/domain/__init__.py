"""Pure core of the notify service: no Flask, kombu, SQLAlchemy or smtplib in here."""
