"""Test-only stand-in for a small part of Ray's Python API.

It belongs to raydeploy's Ray stand-in (internal/testenv/raystandin) and is put
on PYTHONPATH in the stand-in node image, so that the SDK's validation job runs
unchanged. Supported: ray.init(address=...), ray.nodes(), ray.cluster_resources(),
ray.available_resources(), @ray.remote functions (num_cpus, num_gpus, memory,
resources; .options(scheduling_strategy=NodeAffinitySchedulingStrategy(...))),
ray.get, ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address().

A task is scheduled by the head as Ray's raylets do it: it asks for 1 CPU
unless told otherwise, runs only on a node with those resources free, and a
hard node affinity that can never be met fails with
ray.exceptions.TaskUnschedulableError at ray.get. The function's code object
is sent (marshal, base64) through the head to the chosen node's stand-in
agent, which runs it in a python3 subprocess there and answers with the JSON
result. Functions must be plain
module-level functions (no closures) returning JSON-serialisable values; every
node must run the same Python version.
"""

import base64
import concurrent.futures
import json
import marshal
import os
import sys
import types
import urllib.error
import urllib.request

__version__ = os.environ.get("RAY_STANDIN_VERSION", "2.58.0")

_state = {"address": None}
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)


from ray import exceptions  # noqa: E402
from ray.exceptions import GetTimeoutError, RayTaskError, TaskUnschedulableError  # noqa: F401


def _temp_dir():
    return os.environ.get("RAY_TMPDIR", "/tmp/ray")


def _resolve_address(address):
    if address in (None, "", "auto"):
        address = os.environ.get("RAY_ADDRESS") or None
    if address in (None, "", "auto"):
        try:
            with open(os.path.join(_temp_dir(), "ray_current_cluster")) as f:
                address = f.read().strip()
        except OSError:
            address = None
    if not address:
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to "
            "connect to by setting `--address` flag or `RAY_ADDRESS` environment variable."
        )
    if address.startswith("ray://") or "://" in address:
        raise ValueError("the Ray stand-in supports only host:port GCS addresses, got %r" % address)
    return address


def _request(url, payload=None, timeout=60):
    data = None
    headers = {"Accept": "application/json"}
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if os.environ.get("RAY_AUTH_MODE") == "token" and os.environ.get("RAY_AUTH_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["RAY_AUTH_TOKEN"]
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def init(address=None, **kwargs):
    """Connect to the running cluster (address: "auto", None or "host:port")."""
    addr = _resolve_address(address)
    _request("http://%s/_standin/nodes" % addr, timeout=30)
    _state["address"] = addr
    return {"address": addr}


def is_initialized():
    return _state["address"] is not None


def shutdown():
    _state["address"] = None


def _require_init():
    if _state["address"] is None:
        init()
    return _state["address"]


def nodes():
    """The cluster's nodes, like ray.nodes(): dicts with NodeID, Alive, Resources..."""
    return _request("http://%s/_standin/nodes" % _require_init())


class ObjectRef:
    """The future result of a task."""

    def __init__(self, future):
        self._future = future


def cluster_resources():
    """The total resources of the ALIVE nodes, like ray.cluster_resources()."""
    return _request("http://%s/_standin/resources" % _require_init())["total"]


def available_resources():
    """What running tasks leave free, like ray.available_resources()."""
    return _request("http://%s/_standin/resources" % _require_init())["available"]


def get(refs, timeout=None):
    """Wait for one ObjectRef or a list of them and return the results."""
    try:
        if isinstance(refs, ObjectRef):
            return refs._future.result(timeout=timeout)
        return [r._future.result(timeout=timeout) for r in refs]
    except concurrent.futures.TimeoutError:
        raise GetTimeoutError("Get timed out: some object(s) not ready.") from None


def _module_globals(code, glb, out):
    for name in code.co_names:
        val = glb.get(name)
        if isinstance(val, types.ModuleType):
            out[name] = val.__name__
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _module_globals(const, glb, out)
    return out


def _resources(options):
    """The resources a task asks for, with Ray's defaults and checks
    (python/ray/_private/ray_option_utils.py): 1 CPU unless num_cpus is given."""
    custom = dict(options.get("resources") or {})
    if "CPU" in custom or "GPU" in custom:
        raise ValueError("Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword")
    res = {"CPU": options.get("num_cpus", 1), "GPU": options.get("num_gpus", 0),
           "memory": options.get("memory", 0)}
    res.update(custom)
    for name, quantity in res.items():
        if not isinstance(quantity, (int, float)) or quantity < 0:
            raise ValueError("The quantity of resource %s cannot be negative" % name)
    return {k: float(v) for k, v in res.items() if v}


def _submit(request):
    """Has the head schedule the task (it waits for resources as Ray does)
    and run it on the chosen node; returns the task's result."""
    answer = _request("http://%s/_standin/submit" % _require_init(), request, timeout=None)
    if answer.get("ok"):
        return answer["result"]
    kind = answer.get("error_type")
    if kind == "TaskUnschedulableError":
        raise TaskUnschedulableError(answer.get("error"))
    if kind == "ValueError":
        raise ValueError(answer.get("error"))
    if kind == "RaySystemError":
        raise exceptions.RaySystemError(answer.get("error"))
    raise RayTaskError("task %s failed:\n%s" % (request["task"]["name"], answer.get("error")))


class RemoteFunction:
    """A function decorated with @ray.remote."""

    def __init__(self, fn, options):
        if fn.__closure__:
            raise TypeError("the Ray stand-in cannot ship closures; use a module-level function")
        _resources(options)  # Ray checks the options when they are given
        self._fn = fn
        self._options = dict(options)

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return RemoteFunction(self._fn, merged)

    def remote(self, *args, **kwargs):
        fn = self._fn
        payload = {
            "name": fn.__name__,
            "python": "%d.%d" % sys.version_info[:2],
            "code": base64.b64encode(marshal.dumps(fn.__code__)).decode(),
            "defaults": list(fn.__defaults__ or ()),
            "modules": _module_globals(fn.__code__, fn.__globals__, {}),
            "args": list(args),
            "kwargs": kwargs,
        }
        request = {"resources": _resources(self._options), "task": payload,
                   "caller_node_id": os.environ.get("RAY_STANDIN_NODE_ID", "")}
        strategy = self._options.get("scheduling_strategy")
        if strategy is not None and getattr(strategy, "node_id", None):
            request["node_id"] = strategy.node_id
            request["soft"] = bool(strategy.soft)
        return ObjectRef(_pool.submit(_submit, request))

    def __call__(self, *args, **kwargs):
        raise TypeError("Remote functions cannot be called directly. Use %s.remote()." % self._fn.__name__)


def remote(*args, **kwargs):
    """@ray.remote or @ray.remote(num_cpus=..., ...) on a function."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})

    def wrap(fn):
        return _make_remote(fn, kwargs)

    return wrap


def _make_remote(obj, options):
    if isinstance(obj, type):
        raise NotImplementedError("the Ray stand-in does not support actors")
    return RemoteFunction(obj, options)


class RuntimeContext:
    """What ray.get_runtime_context() returns."""

    def get_node_id(self):
        return os.environ.get("RAY_STANDIN_NODE_ID", "")

    def get_job_id(self):
        return os.environ.get("RAY_JOB_SUBMISSION_ID", "")


def get_runtime_context():
    return RuntimeContext()


from ray import util  # noqa: E402  (after the definitions: util imports nothing back)
