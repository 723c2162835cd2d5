"""Shared kernel of the Shop services: nothing in here knows about a particular service."""
