"""The KServe runtime in kserve/, checked offline (no Kubernetes or container engine runs here).

The manifests parse and carry what KServe requires (a ClusterServingRuntime with an onnx model
format, protocol versions v2 and grpc-v2, one kserve-container with image, args, ports and
probes; InferenceServices naming that runtime); every `--flag` the runtime passes is one
`sparrow serve --help` lists; the ports, probes and Prometheus annotation agree with the args; the
Dockerfile installs the binary where the runtime's command runs it. Then the binary is started
exactly as the runtime starts it, on KServe's layout (the model file directly in the model dir, no
version folder), with only the ports made free ones and the host loopback, and tritonclient checks
it over REST and gRPC: ready, the model under the InferenceService's name, inference equal to
`sparrow run`.
Usage: python check_kserve.py PATH/TO/sparrow
"""
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml

from serving import Checks, Server, StartError, root, run_reference

kserve = root / "kserve"
sparrow = str(pathlib.Path(sys.argv[1]).resolve())
check = Checks()


docs = {}
for f in sorted(kserve.glob("*.yaml")):
    try:
        docs[f.name] = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
        check(f"{f.name} parses", True)
    except yaml.YAMLError as e:
        check(f"{f.name} parses", False, str(e))
runtimes = [d for ds in docs.values() for d in ds if d.get("kind") in ("ClusterServingRuntime", "ServingRuntime")]
services = [d for ds in docs.values() for d in ds if d.get("kind") == "InferenceService"]
check("one serving runtime", len(runtimes) == 1, str(len(runtimes)))
rt = runtimes[0] if runtimes else {}
spec = rt.get("spec", {})
check("runtime apiVersion", rt.get("apiVersion") == "serving.kserve.io/v1alpha1", str(rt.get("apiVersion")))
check("runtime name", bool(rt.get("metadata", {}).get("name")))
formats = spec.get("supportedModelFormats", [])
check("model format onnx", any(f.get("name") == "onnx" and f.get("version") for f in formats), str(formats))
check("protocol versions v2 and grpc-v2", {"v2", "grpc-v2"} <= set(spec.get("protocolVersions", [])),
      str(spec.get("protocolVersions")))
containers = spec.get("containers", [])
check("one container named kserve-container", len(containers) == 1 and containers[0].get("name") == "kserve-container")
c = containers[0] if containers else {}
check("image given", bool(c.get("image")))
args = c.get("args", [])
check("args start with serve", args[:1] == ["serve"], str(args))

# Every flag is one `sparrow serve --help` lists, and the values are what KServe needs.
help_text = subprocess.run([sparrow, "serve", "--help"], capture_output=True, text=True, check=True).stdout
flags = {}
for a in args[1:]:
    m = re.fullmatch(r"(--[a-z0-9-]+)(?:=(.*))?", a)
    check(f"arg {a} is --flag=value", m is not None)
    if m:
        flags[m.group(1)] = m.group(2)
        check(f"{m.group(1)} is a `sparrow serve` flag", re.search(rf"^\s+{re.escape(m.group(1))}\b", help_text, re.M)
              is not None)
check("model dir is KServe's /mnt/models", flags.get("--model-dir") == "/mnt/models", str(flags))
check("model name is the InferenceService's", flags.get("--model-name") == "{{.Name}}", str(flags))
check("listens on every interface", flags.get("--host") == "0.0.0.0")
http_port, grpc_port = int(flags.get("--port", 0)), int(flags.get("--grpc-port", 0))
check("REST and gRPC ports", http_port > 0 and grpc_port > 0 and http_port != grpc_port, str(flags))
ports = [p.get("containerPort") for p in c.get("ports", [])]
check("container port is the REST port", ports == [http_port], str(ports))
for probe, path in [("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")]:
    g = c.get(probe, {}).get("httpGet", {})
    check(f"{probe} on {path}, REST port", g.get("path") == path and g.get("port") == http_port, str(g))
ann = spec.get("annotations", {})
check("Prometheus scrapes /metrics on the REST port", ann.get("prometheus.kserve.io/port") == str(http_port) and
      ann.get("prometheus.kserve.io/path") == "/metrics", str(ann))
command = c.get("command", [])
dockerfile = (kserve / "Dockerfile").read_text()
check("command is the binary the Dockerfile installs", len(command) == 1 and f"COPY --from=build /out/sparrow {command[0]}"
      in dockerfile and f'ENTRYPOINT ["{command[0]}"]' in dockerfile, str(command))
check("Dockerfile builds the sparrow product", "--product sparrow" in dockerfile)
check("Dockerfile exposes both ports", re.search(rf"^EXPOSE .*\b{http_port}\b.*\b{grpc_port}\b", dockerfile, re.M)
      is not None)
env = {e.get("name"): e.get("value") for e in c.get("env", [])}
check("threads from the env the binary reads", env.get("SPARROW_NUM_THREADS", "").isdigit(), str(env))

check("InferenceService examples", len(services) >= 1)
for s in services:
    name = s.get("metadata", {}).get("name", "?")
    model = s.get("spec", {}).get("predictor", {}).get("model", {})
    check(f"{name}: apiVersion", s.get("apiVersion") == "serving.kserve.io/v1beta1")
    check(f"{name}: onnx on this runtime", model.get("modelFormat", {}).get("name") == "onnx" and
          model.get("runtime") == rt.get("metadata", {}).get("name"), str(model))
    check(f"{name}: storageUri", bool(model.get("storageUri")))
    check(f"{name}: a protocol the runtime speaks", model.get("protocolVersion") in spec.get("protocolVersions", []))
    for p in model.get("ports", []):
        check(f"{name}: port {p.get('containerPort')} is one the runtime listens on",
              p.get("containerPort") in (http_port, grpc_port) and p.get("name") in ("h2c", "http1"), str(p))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The binary as the runtime starts it, on KServe's layout.
with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    mnt = tmp / "mnt" / "models"
    mnt.mkdir(parents=True)
    model_file = root / "Models" / "digits" / "digits_resnet.onnx"
    shutil.copy(model_file, mnt / "model.onnx")
    # KServe's layout may carry a sparrow.json beside the model: one format and thread, so the
    # answer equals `sparrow run`'s bit for bit (and no format timing at load).
    (mnt / "sparrow.json").write_text('{"format": "dense", "threads": 1}')
    isvc = services[0]["metadata"]["name"] if services else "model"
    hp, gp = free_port(), free_port()
    run_args = []
    for a in args:
        a = a.replace("{{.Name}}", isvc).replace("=/mnt/models", f"={mnt}")
        a = {"--host=0.0.0.0": "--host=127.0.0.1", f"--port={http_port}": f"--port={hp}",
             f"--grpc-port={grpc_port}": f"--grpc-port={gp}"}.get(a, a)
        run_args.append(a)
    try:
        server = Server(sparrow, *run_args[1:], free_ports=False,
                        env={"SPARROW_NUM_THREADS": env.get("SPARROW_NUM_THREADS", "1"), "PATH": "/usr/bin:/bin",
                             "SPARROW_FORMAT_CACHE": str(tmp / "formats.json")})
        started = f"http://127.0.0.1:{hp}" in server.line and f"grpc://127.0.0.1:{gp}" in server.line
        check("starts with the runtime's args", started, server.line)
    except StartError as e:
        server, started = None, False
        check("starts with the runtime's args", False, str(e))
    if started:
        x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
        np.save(tmp / "x.npy", x)
        want = run_reference(sparrow, model_file, {"x": tmp / "x.npy"}, tmp / "out")["logits"]
        rest = httpclient.InferenceServerClient(f"127.0.0.1:{hp}", network_timeout=120)
        grpcc = grpcclient.InferenceServerClient(f"127.0.0.1:{gp}")
        check("REST ready", rest.is_server_ready() and rest.is_model_ready(isvc))
        check("gRPC ready", grpcc.is_server_ready() and grpcc.is_model_ready(isvc))
        check("served as the InferenceService's name", rest.get_model_metadata(isvc)["versions"] == ["1"])
        for label, mod, cl in [("REST", httpclient, rest), ("gRPC", grpcclient, grpcc)]:
            i = mod.InferInput("x", [1, 1, 64, 64], "FP32")
            i.set_data_from_numpy(x)
            got = cl.infer(isvc, [i]).as_numpy("logits")
            check(f"{label} inference equals sparrow run", got is not None and np.array_equal(got, want))
        grpcc.close()
    if server is not None:
        code = server.stop()
        check("SIGTERM: clean exit", code == 0, f"exit {code}")

    # A model dir without one model file: the server does not start, and says why.
    (tmp / "empty").mkdir()
    r = subprocess.run([sparrow, "serve", "--model-dir", str(tmp / "empty"), "--port", "0"], capture_output=True,
                       text=True, timeout=60)
    check("empty model dir: a clear error", r.returncode != 0 and "no .onnx file" in r.stderr, r.stderr[-300:])

check.finish()
