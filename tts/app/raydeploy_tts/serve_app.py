"""The Ray Serve application: import path raydeploy_tts.serve_app:build_app.

build_app is a Serve application builder: the `args` of the application in
the Serve config are the service's settings (config.Config)."""

from ray import serve

from .api import create_app
from .config import Config

DEPLOYMENT = "TTSService"


def build_app(args):
    cfg = Config.from_dict(args)
    fastapi_app = create_app(cfg)

    @serve.deployment(name=DEPLOYMENT)
    @serve.ingress(fastapi_app)
    class TTSService:
        def __init__(self):
            # Probe the engines when the replica starts, so that a replica
            # without them fails its deploy instead of its first request.
            fastapi_app.state.tts.init()

    return TTSService.bind()
