"""Helpers for testing code that reads courses: a modulestore stand-in and synthetic courses."""
