"""The sample projects ``sagebuild init --example NAME`` copies, shipped as package data.

Each folder holding a ``sagebuild.json`` is one example (``wine``); ``notebooks/`` holds the
notebooks the AWS notebook variant uploads. Code reads them with ``importlib.resources`` so an
installed wheel has them as well as a checkout.
"""
