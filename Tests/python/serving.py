"""What the `sparrow serve` checks share (check_server.py, check_grpc.py, check_kserve.py,
fuzz_server.py): a pass/fail tally, a server process on free ports, and repository folders."""
import http.client
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

root = pathlib.Path(__file__).resolve().parents[2]
models = root / "Models"


class Checks:
    """Counts checks; prints each failure as it happens and the tally at the end."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, label, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {label} {detail}".rstrip(), flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


class StartError(Exception):
    """The server printed no listening line: its first stdout line and the end of its log."""


class Server:
    """A `sparrow serve` process. With `free_ports` it listens on free ports (REST, and gRPC with
    `grpc`); the ports are read from its first stdout line. Its log goes to a temporary file."""

    def __init__(self, sparrow, *extra, grpc=False, free_ports=True, env=None):
        cmd = [sparrow, "serve"]
        if free_ports:
            cmd += ["--port", "0"] + (["--grpc-port", "0"] if grpc else [])
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd + list(extra), stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line or (grpc and "grpc://" not in line):
            self.proc.kill()
            self.proc.wait()
            raise StartError(f"server did not start: {line!r}\n{self.logs()[-2000:]}")
        self.line = line
        self.http = line.split("http://")[1].split()[0]
        self.url = self.http
        self.port = int(self.http.rsplit(":", 1)[1])
        self.grpc = line.split("grpc://")[1].split()[0] if "grpc://" in line else None

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers, body bytes) of one raw HTTP request on a new connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def wait(self, timeout=60):
        """The exit status, or None (after killing it) when it does not exit within `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def logs(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def rss_mib(self):
        """Resident memory in MiB (0 once the process is gone)."""
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def put_model(repo, name, model, versions=(1,), config=None):
    """Adds `repo/<name>/<version>/model.onnx` (a file to copy, or the bytes) per version, and
    `repo/<name>/sparrow.json` when `config` is given (a dict, or text written as it is)."""
    for v in versions:
        folder = pathlib.Path(repo) / name / str(v)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(model, (bytes, bytearray)):
            (folder / "model.onnx").write_bytes(model)
        else:
            shutil.copy(model, folder / "model.onnx")
    if config is not None:
        (pathlib.Path(repo) / name / "sparrow.json").write_text(config if isinstance(config, str) else json.dumps(config))


def run_reference(sparrow, model, inputs, out_dir, *extra):
    """`sparrow run` on `inputs` ({name: .npy path}) into `out_dir` (format dense, 1 thread
    unless `extra` says otherwise); the outputs as {file stem: array}."""
    import numpy as np

    args = [sparrow, "run", str(model)]
    for n, f in inputs.items():
        args += ["--input", f"{n}={f}"]
    args += ["--output-dir", str(out_dir)] + (list(extra) or ["--format", "dense", "--threads", "1"])
    subprocess.run(args, check=True, capture_output=True)
    return {p.stem: np.load(p) for p in pathlib.Path(out_dir).glob("*.npy")}


def error_message(body):
    """The `error` string of a JSON error body, or None."""
    try:
        msg = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return msg if isinstance(msg, str) and msg else None
