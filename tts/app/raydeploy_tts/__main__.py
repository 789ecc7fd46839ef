"""Run the TTS service without Ray: python3 -m raydeploy_tts [--host H] [--port P] [--config JSON]."""

import argparse
import json

import uvicorn

from .api import create_app
from .config import Config


def main():
    p = argparse.ArgumentParser(prog="python3 -m raydeploy_tts")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--config", default="{}", help="the service settings as JSON (see config.py)")
    a = p.parse_args()
    app = create_app(Config.from_dict(json.loads(a.config)))
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
