"""``persam app``: a web page for people and an HTTP API for programs, over the library.

:func:`create_app` wraps one loaded model in an ASGI app (FastAPI + a static page, no build step);
``persam app`` serves it with uvicorn on 127.0.0.1. Needs the ``fastapi``, ``uvicorn`` and
``python-multipart`` packages.
"""

from .config import AppConfig
from .server import create_app

__all__ = ["AppConfig", "create_app"]
