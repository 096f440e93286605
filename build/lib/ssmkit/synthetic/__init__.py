"""The synthetic tasks (selective copying, MQAR, induction heads, in-context regression, sequential digits)."""
