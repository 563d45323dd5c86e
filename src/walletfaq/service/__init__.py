"""Layer 6, service: walletfaq over HTTP (FastAPI).

The app factory, its routers per area, settings, schemas, middleware, metrics, the encoding
pool and the served-index holder (hot reload, edits across worker processes). Imports the
layers below it; only the command line imports it.
"""
