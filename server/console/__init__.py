"""The admin console at /admin: server-rendered pages (Litestar's Jinja templates, one
small script of our own, nothing from a CDN) for the people who run the bot — review
and correct answers, compare and promote adapters, run training jobs, edit documents
and roll the index back. Every page works without the script; forms post and redirect.
"""

from server.console.rendering import STATIC, template_config
from server.console.router import console_router

__all__ = ["STATIC", "console_router", "template_config"]
