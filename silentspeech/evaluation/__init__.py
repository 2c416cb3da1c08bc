"""Scoring trained models: recognition (WER/CER, LM tuning) and speech production (audio judged by a recogniser)."""
