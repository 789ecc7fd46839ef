"""A small Serve application for the stand-in's Serve test (FastAPI ingress).

Its import waits until the file named by GREET_GATE exists, so that the test
sees the application DEPLOYING for as long as it wants."""

import os
import time

from fastapi import FastAPI
from ray import serve

gate = os.environ.get("GREET_GATE")
while gate and not os.path.exists(gate):
    time.sleep(0.05)

api = FastAPI()


@serve.deployment(name="Greeter", num_replicas=1, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class Greeter:
    def __init__(self, punct="!"):
        Greeter.punct = punct


@api.get("/hello")
def hello(name: str = "world"):
    return {"greeting": "hello " + name + Greeter.punct, "pid": os.getpid()}


app = Greeter.bind()


def build(args):
    return Greeter.bind(args.get("punct", "?"))
