"""OfferSeal: evidence, intent agreements and candidate touchpoints between offer and first day."""

__version__ = "0.1.0"
