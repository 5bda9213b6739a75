"""Deterministic simulation of the coordinator core (fake clock, network and replicas)."""
