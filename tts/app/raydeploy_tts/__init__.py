"""raydeploy's text-to-speech service: a FastAPI app over real speech engines
(flite, espeak-ng, festival), deployed on Ray Serve (serve_app) or run alone
with `python3 -m raydeploy_tts --host H --port P`."""
