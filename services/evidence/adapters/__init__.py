"""What the evidence service talks to: its database (`storage.py`, the storage port's
implementation), the EvidenceRegistry on chain (`registry.py`), the judicial chain (`btoe.py`)."""
