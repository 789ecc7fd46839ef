"""Runs one task of the Ray stand-in: reads the task as JSON on stdin, writes
{"ok": true, "result": ...} or {"ok": false, "error": traceback} on stdout.
The task's own prints go to stderr."""

import base64
import builtins
import importlib
import json
import marshal
import sys
import traceback
import types


def main():
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        req = json.load(sys.stdin)
        here = "%d.%d" % sys.version_info[:2]
        if req.get("python") != here:
            raise RuntimeError("Python version mismatch: the driver runs %s, this node %s"
                               % (req.get("python"), here))
        code = marshal.loads(base64.b64decode(req["code"]))
        glb = {"__builtins__": builtins, "__name__": "__ray_task__"}
        for name, module in req.get("modules", {}).items():
            glb[name] = importlib.import_module(module)
        fn = types.FunctionType(code, glb, req["name"], tuple(req.get("defaults") or ()))
        answer = {"ok": True, "result": fn(*req.get("args", []), **req.get("kwargs", {}))}
        text = json.dumps(answer)
    except Exception:
        text = json.dumps({"ok": False, "error": traceback.format_exc()})
    out.write(text)
    out.flush()


if __name__ == "__main__":
    main()
