"""The contracts service: intent agreements whose breach clause is decided on chain.

So far only its pure core exists (terms, the 30% cap, EIP-712 payloads); the HTTP service,
sweeper and messages come with the rest of the contracts issue.
"""
