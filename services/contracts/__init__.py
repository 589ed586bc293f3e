"""The contracts service: intent agreements whose breach clause is decided on chain.

`domain/` is the pure core (terms, the 30% cap, EIP-712 payloads, texts, date and risk rules);
the service layer is split by decision (`service`, `signatures`, `milestones`, `amendments`,
`risk_tracking`, `sweeper`, over the one `transactions` path) and speaks to the chain and the
evidence service through `ports`, implemented in `adapters/`; `api` and `app` are the entry points.
"""
