"""GPU hardware and AI model attestation: nonces, evidence checks, signed EAR verdicts, pools."""
