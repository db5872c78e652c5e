"""Validate: declarative rules over an extract, before anything is loaded."""
