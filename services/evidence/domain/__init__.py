"""Pure core of the evidence service: no Flask, kombu, SQLAlchemy or web3 in here."""
