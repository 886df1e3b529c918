"""One module per chapter that trains models: its recipes per profile and its train-or-load
functions, over the shared helper in ``common``."""
