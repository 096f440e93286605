"""Shared data utilities: synthetic task generators and input checks."""
