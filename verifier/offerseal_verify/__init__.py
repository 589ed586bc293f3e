"""The OfferSeal verifier: proof bundles and agreement dossiers, checked with nothing but the
files, a JSON-RPC endpoint and the roots one trusts. No web framework, database or web3."""

__version__ = "0.1.0"
