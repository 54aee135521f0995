"""Strategies, the simulated broker, the portfolio and the ledger."""
