"""Data contracts and promotion gates (pure; filled in by the retraining-flow work)."""
