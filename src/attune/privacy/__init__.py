"""Privacy by design: consent, pseudonymization, PII minimization, encryption, erasure, audit."""
