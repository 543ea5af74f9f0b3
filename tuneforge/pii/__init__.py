"""Personal data and secrets: found by maintained detectors (Presidio, python-stdnum, phonenumbers, detect-secrets,
spaCy NER) and replaced by typed placeholders such as ``[EMAIL]``; used on training data and on model outputs.

``tuneforge.pii.redactor`` holds the entry points (``redactor_for``); importing this package loads none of the
detectors.
"""
