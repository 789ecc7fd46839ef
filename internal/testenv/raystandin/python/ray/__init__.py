"""Test-only stand-in for a small part of Ray's Python API.

It belongs to raydeploy's Ray stand-in (internal/testenv/raystandin) and is put
on PYTHONPATH in the stand-in node image, so that the SDK's validation job runs
unchanged. Supported: ray.init(address=...), ray.nodes(), @ray.remote functions
(with .options(scheduling_strategy=NodeAffinitySchedulingStrategy(...))),
ray.get, ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address().

A task really runs on its target node: the function's code object is sent
(marshal, base64) to that node's stand-in agent, which runs it in a python3
subprocess there and answers with the JSON result. Functions must be plain
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


class RayTaskError(Exception):
    """A remote task raised; the message holds its traceback."""


class TaskUnschedulableError(Exception):
    """A task's hard node affinity names a node that is not alive."""


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


def get(refs, timeout=None):
    """Wait for one ObjectRef or a list of them and return the results."""
    if isinstance(refs, ObjectRef):
        return refs._future.result(timeout=timeout)
    return [r._future.result(timeout=timeout) for r in refs]


def _module_globals(code, glb, out):
    for name in code.co_names:
        val = glb.get(name)
        if isinstance(val, types.ModuleType):
            out[name] = val.__name__
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _module_globals(const, glb, out)
    return out


def _pick_node(strategy):
    alive = [n for n in nodes() if n["Alive"]]
    if strategy is not None and getattr(strategy, "node_id", None):
        for n in alive:
            if n["NodeID"] == strategy.node_id:
                return n
        if not strategy.soft:
            raise TaskUnschedulableError(
                "The node specified via NodeAffinitySchedulingStrategy doesn't exist any more "
                "or is infeasible, and soft=False was specified. node_id: %s" % strategy.node_id)
    if not alive:
        raise TaskUnschedulableError("no alive node in the cluster")
    here = os.environ.get("RAY_STANDIN_NODE_ID")
    for n in alive:
        if n["NodeID"] == here:
            return n
    return alive[0]


def _run_remote(node, payload):
    url = "http://%s:%d/_standin/tasks" % (node["NodeManagerAddress"], node["DashboardAgentListenPort"])
    answer = _request(url, payload, timeout=600)
    if not answer.get("ok"):
        raise RayTaskError("task %s failed on node %s:\n%s" % (payload["name"], node["NodeID"], answer.get("error")))
    return answer["result"]


class RemoteFunction:
    """A function decorated with @ray.remote."""

    def __init__(self, fn, options):
        if fn.__closure__:
            raise TypeError("the Ray stand-in cannot ship closures; use a module-level function")
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
        strategy = self._options.get("scheduling_strategy")
        try:
            node = _pick_node(strategy)
        except Exception as e:  # reported at ray.get, as Ray does
            fut = concurrent.futures.Future()
            fut.set_exception(e)
            return ObjectRef(fut)
        return ObjectRef(_pool.submit(_run_remote, node, payload))

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
