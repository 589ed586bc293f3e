"""The contracts service's adapters: the IntentAgreements contract and the evidence service."""
