"""What every OfferSeal service shares: settings, database, messages, broker, access, errors."""
