"""The notify service: candidate touchpoints from signing link to first day, on a durable
schedule, and the candidate's replies."""
