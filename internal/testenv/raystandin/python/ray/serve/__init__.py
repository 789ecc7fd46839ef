"""Test-only stand-in for the part of ray.serve that application code uses.

It belongs to raydeploy's Ray stand-in (internal/testenv/raystandin): the
stand-in's Serve REST API imports an application's code with
`python3 -m ray.serve._standin_replica` (one process per replica), which
needs @serve.deployment, @serve.ingress, .options() and .bind() to build the
application the way Ray Serve's own do. Supported: a class deployment with a
FastAPI (ASGI) ingress, or a class whose __call__ takes a Starlette request;
application builders (import_path naming a function that takes the args).
Not supported: composition of deployments, handles, batching, multiplexing.
"""

import copy

__all__ = ["deployment", "ingress", "Deployment", "Application"]

# Options @serve.deployment accepts (python/ray/serve/api.py).
_OPTIONS = {
    "name", "num_replicas", "route_prefix", "ray_actor_options", "placement_group_bundles",
    "placement_group_strategy", "max_replicas_per_node", "user_config", "max_ongoing_requests",
    "max_queued_requests", "autoscaling_config", "graceful_shutdown_wait_loop_s",
    "graceful_shutdown_timeout_s", "health_check_period_s", "health_check_timeout_s",
    "logging_config", "request_router_config", "version",
}


class Application:
    """A bound deployment: what an import_path must name (or a builder return)."""

    def __init__(self, deployment, args, kwargs):
        self._deployment = deployment
        self._args = args
        self._kwargs = kwargs

    def __repr__(self):
        return "Application(%s)" % self._deployment.name


class Deployment:
    """What @serve.deployment returns."""

    def __init__(self, target, options):
        self._target = target
        self._options = options

    @property
    def name(self):
        return self._options.get("name") or self._target.__name__

    @property
    def func_or_class(self):
        return self._target

    def options(self, **kwargs):
        bad = sorted(set(kwargs) - _OPTIONS)
        if bad:
            raise TypeError("options() got unexpected keyword argument(s) %s" % ", ".join(bad))
        merged = copy.deepcopy(self._options)
        merged.update(kwargs)
        return Deployment(self._target, merged)

    def bind(self, *args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, Application):
                raise NotImplementedError("the Ray stand-in does not compose deployments (bind got an Application)")
        return Application(self, args, kwargs)

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Deployments cannot be constructed directly. Use `deployment.bind()` instead.")


def deployment(_func_or_class=None, **options):
    """@serve.deployment or @serve.deployment(name=..., num_replicas=..., ...)."""
    bad = sorted(set(options) - _OPTIONS)
    if bad:
        raise TypeError("deployment() got unexpected keyword argument(s) %s" % ", ".join(bad))
    if options.get("num_replicas") not in (None, "auto") and options.get("autoscaling_config") is not None:
        raise ValueError("Manually setting num_replicas is not allowed when autoscaling_config is provided.")

    def wrap(target):
        return Deployment(target, dict(options))

    if _func_or_class is not None:
        return wrap(_func_or_class)
    return wrap


def ingress(app):
    """@serve.ingress(fastapi_app) on a deployment class: HTTP goes to app."""

    def wrap(cls):
        if not isinstance(cls, type):
            raise ValueError("@serve.ingress must be used with a class")
        cls.__serve_asgi_app__ = app
        return cls

    return wrap
