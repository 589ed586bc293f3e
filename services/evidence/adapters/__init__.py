"""What the evidence service talks to outside its database: the EvidenceRegistry on chain."""
