"""Pure core of the contracts service: no Flask, kombu, SQLAlchemy or web3 in here."""
