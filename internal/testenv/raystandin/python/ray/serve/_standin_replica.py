"""Runs one replica of a Serve application for raydeploy's Ray stand-in.

Reads a JSON spec on stdin: import_path, args, host, port, route_prefix.
Imports the application's code the way Serve does (import_path "module:attr"
or "module.attr"; attr an Application, or a builder function called with the
args), constructs the ingress deployment's class and serves it over HTTP with
uvicorn. Reports on stdout, one JSON line each:
  {"event": "imported", "deployments": [{"name", "options"}], "docs_path"}
  {"event": "ready", "pid"}
  {"event": "error", "error": traceback}  (then exits 1)
"""

import asyncio
import importlib
import json
import os
import sys
import traceback


def emit(**kw):
    sys.__stdout__.write(json.dumps(kw) + "\n")
    sys.__stdout__.flush()


def load(import_path, args):
    from ray import serve

    if ":" in import_path:
        mod_name, _, attr = import_path.partition(":")
    else:
        mod_name, _, attr = import_path.rpartition(".")
    if not mod_name or not attr:
        raise ValueError("Got invalid import path \"%s\". An import path must be of the form "
                         "\"module:attribute\" or \"module.attribute\"." % import_path)
    target = importlib.import_module(mod_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if isinstance(target, serve.Application):
        if args:
            raise TypeError("Arguments can only be passed to an application builder function, "
                            "not an already built application (%s)." % import_path)
        return target
    if isinstance(target, serve.Deployment):
        raise TypeError("Expected '%s' to be an Application but got a Deployment. "
                        "Did you forget to call .bind()?" % import_path)
    if callable(target):
        app = target(args or {})
        if not isinstance(app, serve.Application):
            raise TypeError("Application builder functions must return an `Application` "
                            "returned `from `Deployment.bind()`, but got: %s." % type(app))
        return app
    raise TypeError("Expected '%s' to be an Application, got %s." % (import_path, type(target)))


def asgi_of(app):
    dep = app._deployment
    cls = dep.func_or_class
    if not isinstance(cls, type):
        raise NotImplementedError("the Ray stand-in serves class deployments only")
    instance = cls(*app._args, **app._kwargs)
    asgi = getattr(cls, "__serve_asgi_app__", None)
    if asgi is not None:
        return asgi
    if not hasattr(instance, "__call__"):
        raise TypeError("deployment %s has neither an ingress nor __call__" % dep.name)
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response

    async def call(scope, receive, send):
        if scope["type"] != "http":
            return
        out = instance.__call__(Request(scope, receive))
        if asyncio.iscoroutine(out):
            out = await out
        if not isinstance(out, Response):
            out = PlainTextResponse(out) if isinstance(out, str) else JSONResponse(out)
        await out(scope, receive, send)

    return call


def main():
    sys.stdout = sys.stderr  # the application's prints go to the log
    try:
        spec = json.load(sys.stdin)
        app = load(spec["import_path"], spec.get("args"))
        dep = app._deployment
        asgi = asgi_of(app)
        emit(event="imported", deployments=[{"name": dep.name, "options": dep._options}],
             docs_path=getattr(asgi, "docs_url", None))
        import uvicorn

        root = spec.get("route_prefix") or ""
        config = uvicorn.Config(asgi, host=spec["host"], port=spec["port"], log_level="warning",
                                root_path="" if root == "/" else root, lifespan="on")
        server = uvicorn.Server(config)

        async def run():
            task = asyncio.ensure_future(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the HTTP server of the replica stopped while starting")
                await asyncio.sleep(0.02)  # uvicorn offers no start event; this is its own flag
            emit(event="ready", pid=os.getpid())
            await task

        asyncio.run(run())
    except BaseException:
        emit(event="error", error=traceback.format_exc())
        sys.exit(1)


if __name__ == "__main__":
    main()
