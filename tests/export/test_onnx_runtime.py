"""``--runtime onnxruntime``: the learned networks on ONNX Runtime through I/O binding, as torch computes them.

Everything runs on the CPU here; the same binding code serves CUDA memory on a GPU. The app's
cache folder (where the exports live) is moved into each test's ``tmp_path``.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from app.assemble import StageChoice
from app.cli import RUNTIMES as CLI_RUNTIMES
from app.cli import main
from app.stream import build_pipeline
from app.sources import open_source
from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet
from models.matting.base import Matte
from models.ops import onnx_runtime
from models.ops.checkpoint import save_safetensors
from models.ops.onnx_runtime import RUNTIMES, OnnxRuntimeNetwork, RuntimeUnavailable, providers_for
from models.ops.tensor_image import alpha_tensor, download, upload
from models.stream import StreamState
from models.ops.onnx_export import OnnxSpec
from tests.conftest import write_image

#: Every stage in the registry with a learned network (kind, name); a guard test keeps it complete.
LEARNED = [("harmonizer", "harmonizer"), ("harmonizer", "adain"), ("harmonizer", "hpbnet"),
           ("harmonizer", "phnet"), ("blend", "learned")]
TOLERANCE = 1e-4
#: The largest |ONNX Runtime − torch| each network showed (printed with -s, for the record).
MEASURED: dict[str, float] = {}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The app's cache folder inside ``tmp_path``; returns the folder the exports go to."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "harmonicam" / "onnx"


@pytest.fixture
def cache_with_sample(cache, sample_clip):
    """``cache``, holding a copy of the sample clip so that it is not rendered again."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_clip, cache.parent / sample_clip.name)
    return cache


@pytest.fixture
def exports(monkeypatch):
    """The number of exports so far (a list, one entry per exported spec name)."""
    done = []
    real = onnx_runtime.export_onnx

    def counting(spec, path, opset):
        done.append(spec.name)
        return real(spec, path, opset)

    monkeypatch.setattr(onnx_runtime, "export_onnx", counting)
    return done


def scene(w=320, h=180, seed=0):
    """A soft-edged person-like ellipse over a textured frame, and a different complete background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((1 - np.hypot((xx - w / 2) / (w / 5), (yy - h / 2) / (h / 2.5))) * 8, 0, 1).astype(np.float32)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + 60, 0, 255)  # a warm person…
    background = np.full((h, w, 3), (40, 90, 170), np.uint8)  # …over a cool scene
    composite = (alpha[..., None] * rgb + (1 - alpha[..., None]) * background).astype(np.uint8)
    return rgb, alpha, background, composite


def make(kind: str, name: str, runtime: str = "torch", **options):
    return registry.create(kind, name, **({"runtime": runtime} if runtime != "torch" else {}), **options)


def record(name: str, diff: float) -> None:
    MEASURED[name] = max(MEASURED.get(name, 0.0), diff)
    print(f"max |ONNX Runtime - torch| of {name}: {MEASURED[name]:.2e}")


def test_the_list_covers_every_learned_network_in_the_registry(cache):
    learned = set()
    for kind in ("harmonizer", "blend"):
        for name in registry.usable(kind):
            model = registry.create(kind, name)
            if getattr(model, "onnx_specs", list)():
                learned.add((kind, name))
            else:  # stages without a network take the choice and ignore it
                other = registry.create(kind, name, runtime="onnxruntime")
                assert other.runtime == "onnxruntime" and not getattr(other, "onnx_networks", {})
                other.close()
            model.close()
    assert learned == set(LEARNED)
    assert CLI_RUNTIMES == RUNTIMES  # the parser's copy (it does not import torch)


def _spec_inputs(spec: OnnxSpec, batch: int = 1, size: tuple[int, int] | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand((batch, *s[1:-2], *(size or s[-2:])), generator=g) for s in spec.input_shapes)


@pytest.mark.parametrize("kind, name", LEARNED)
def test_the_stand_in_gives_the_torch_output_through_io_binding(kind, name, cache):
    model = make(kind, name, "onnxruntime")
    for spec in model.onnx_specs():
        net = model.onnx_networks[spec.name]
        assert isinstance(net, OnnxRuntimeNetwork) and net.provider == "CPUExecutionProvider"
        # the spec's own shape, a batch of two, and a shape of the kind the stage meets per frame
        other = {"blend-unet": (52, 76), "phnet": (72, 128)}.get(spec.name)
        cases = [_spec_inputs(spec), _spec_inputs(spec, batch=2, seed=1)]
        cases += [_spec_inputs(spec, size=other, seed=2)] if other else []
        for inputs in cases:
            with torch.inference_mode():
                got, want = net(*inputs), spec.module(*inputs)
            assert got.shape == want.shape and got.dtype == torch.float32
            record(spec.name, float((got - want).abs().max()))
            assert MEASURED[spec.name] <= TOLERANCE
    assert sorted(p.suffix for p in cache.iterdir()) == [".onnx"] * len(list(cache.iterdir()))  # no partial files
    if name == "phnet":  # the patch grids bake the size in: the 72×128 inputs got a graph of their own
        assert len(list(cache.glob("phnet-*.onnx"))) == 2
    model.close()


def _harmonizer_outputs(model, tensor: bool) -> list[np.ndarray]:
    """Two predictions of one stream (the second with the background's cached work) and the applied frame."""
    rgb, alpha, background, composite = scene()
    image, matte, bg = composite, alpha, background
    if tensor:  # the device path, on CPU tensors
        image, matte, bg = upload(composite, "cpu"), alpha_tensor(alpha, "cpu"), upload(background, "cpu")
    state = StreamState(live=False)
    try:
        inputs = model._small_inputs(Composite(image, matte, image), bg, state)
        cache: dict = {}
        first, second = model.predict(inputs, cache), model.predict(inputs, cache)
        out = model.harmonize(Composite(image, matte, image), bg, Frame(rgb, 0, 0.0), state)
    finally:
        state.close()
    return [first, second, download(out) if tensor else out]


def _check_harmonizer(name: str, torch_model, ort_model) -> None:
    for tensor in (False, True):
        want, got = _harmonizer_outputs(torch_model, tensor), _harmonizer_outputs(ort_model, tensor)
        for w, g in zip(want[:2], got[:2]):  # the transform: filter arguments or a fitted colour map
            record(f"{name} stage", float(np.abs(w - g).max()))
            assert np.abs(w - g).max() <= 1e-3
        assert np.abs(want[2].astype(int) - got[2]).max() <= 1  # the harmonized frame, within rounding


@pytest.mark.parametrize("name", ["harmonizer", "adain", "hpbnet", "phnet"])
def test_each_harmonizer_computes_the_same_result_on_either_runtime(name, cache):
    _check_harmonizer(name, make("harmonizer", name), make("harmonizer", name, "onnxruntime"))


def test_the_complete_background_harmonizer_embeds_the_background_inside_its_graph(cache, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "bg.safetensors"
    save_safetensors(HarmonizerLiteNet(complete_background=True), weights)
    torch_model = make("harmonizer", "harmonizer", weights=str(weights))
    ort_model = make("harmonizer", "harmonizer", "onnxruntime", weights=str(weights))
    assert torch_model.uses_background and ort_model.onnx_networks["harmonizer"].spec.input_names[-1] == "background"
    _check_harmonizer("harmonizer+background", torch_model, ort_model)


@pytest.mark.parametrize("tensor", [False, True])
def test_the_learned_blend_computes_the_same_composite_on_either_runtime(tensor, cache):
    rgb, alpha, background, _ = scene(400, 240, seed=3)
    results = []
    for runtime in ("torch", "onnxruntime"):
        blend, state = make("blend", "learned", runtime), StreamState(live=False)
        # two frames whose outline boxes differ in size: one graph serves both
        for shift in (0, 17):
            a = np.roll(alpha, shift, axis=1)
            if tensor:
                frame = Frame(rgb, 0, 0.0, pixels=upload(rgb, "cpu"))
                out = blend.blend(frame, Matte(alpha_tensor(a, "cpu")), upload(background, "cpu"), state)
                results.append((download(out.image), out.alpha[0, 0].numpy()))
            else:
                out = blend.blend(Frame(rgb, 0, 0.0), Matte(a), background, state)
                results.append((out.image, out.alpha))
        blend.close()
    for (want_image, want_alpha), (got_image, got_alpha) in zip(results[:2], results[2:]):
        record("learned blend stage (alpha)", float(np.abs(want_alpha - got_alpha).max()))
        assert np.abs(want_alpha - got_alpha).max() <= 1e-4
        assert np.abs(want_image.astype(int) - got_image).max() <= 1
    assert len(list(cache.glob("blend-unet-*.onnx"))) == 1


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


def _tiny_spec(module: torch.nn.Module) -> OnnxSpec:
    return OnnxSpec("tiny", module, ((1, 3, 16, 16),), ("x",), ("y",))


def test_the_cache_reexports_when_the_weights_change_and_reuses_otherwise(tmp_path, exports):
    module = _Tiny().eval()
    x = torch.rand(1, 3, 16, 16)
    first = OnnxRuntimeNetwork(_tiny_spec(module), "cpu", tmp_path)
    assert exports == ["tiny"]
    again = OnnxRuntimeNetwork(_tiny_spec(module), "cpu", tmp_path)  # a new stage with the same weights
    assert exports == ["tiny"] and again.path(again.spec) == first.path(first.spec)
    with torch.no_grad():
        module.conv.weight.add_(0.5)
        changed = OnnxRuntimeNetwork(_tiny_spec(module), "cpu", tmp_path)
        assert exports == ["tiny", "tiny"] and len(list(tmp_path.glob("tiny-*.onnx"))) == 2
        assert torch.allclose(changed(x), module(x), atol=TOLERANCE)
        assert not torch.allclose(first(x), module(x), atol=TOLERANCE)  # the first still runs the old weights

    changed(torch.rand(2, 3, 16, 16))  # another batch size: the same graph
    assert exports == ["tiny", "tiny"]
    assert changed(torch.rand(1, 3, 8, 24)).shape == (1, 2, 8, 24)
    assert len(exports) == 3  # another height and width: a graph of its own, exported once…
    changed(torch.rand(1, 3, 8, 24))
    assert len(exports) == 3  # …and reused

    changed.path(changed.spec).write_bytes(b"not an onnx file")  # a damaged cache file is exported again
    repaired = OnnxRuntimeNetwork(_tiny_spec(module), "cpu", tmp_path)
    assert len(exports) == 4 and torch.allclose(repaired(x), module(x).detach(), atol=TOLERANCE)
    assert sorted({p.suffix for p in tmp_path.iterdir()}) == [".onnx"]  # nothing half-written


def test_the_module_the_stage_runs_is_left_as_it_was(tmp_path):
    module = _Tiny().train()  # the export sets eval mode on its own copy
    OnnxRuntimeNetwork(_tiny_spec(module), "cpu", tmp_path)
    assert module.training


def test_missing_packages_and_providers_are_one_sentence_naming_what_to_install(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeUnavailable, match="onnxruntime-gpu.*Installing for a GPU"):
        providers_for("cuda")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert providers_for("cuda") == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda", tensorrt=False) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # torch's exporter cannot write the graphs
    with pytest.raises(RuntimeUnavailable, match="pip install onnx$"):
        providers_for("cpu")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(RuntimeUnavailable, match="pip install onnxruntime"):
        providers_for("cpu")
    with pytest.raises(ValueError, match="unknown runtime 'tpu'"):
        onnx_runtime.runtime_networks([], "tpu", "cpu")


# --- the pipeline and the command line ------------------------------------------------------------

def test_a_pipeline_on_onnx_runtime_renders_what_torch_renders(cache_with_sample):
    source = open_source("sample", size=(320, 180))
    try:
        clip = [source.read() for _ in range(4)]
    finally:
        source.close()
    outputs = {}
    for runtime in ("torch", "onnxruntime"):
        choice = StageChoice(harmonizer="adain", blend="learned", runtime=runtime)
        pipeline = build_pipeline(choice, "#204060", [], frame_locked=True)
        pipeline.live = False  # deterministic predictions
        try:
            outputs[runtime] = [pipeline.process(f).output for f in clip]
        finally:
            pipeline.close()
    for want, got in zip(outputs["torch"], outputs["onnxruntime"]):
        assert np.abs(want.astype(int) - got).max() <= 2


@pytest.mark.usefixtures("isolated_logging")
def test_run_on_onnx_runtime_writes_the_video(tmp_path, cache_with_sample):
    out = tmp_path / "out.mp4"
    assert main(["run", "--source", "sample", "--resolution", "320x180", "--frames", "5", "--runtime",
                 "onnxruntime", "--harmonizer", "adain", "--blend", "learned", "--output", str(out)]) == 0
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert {p.name.split("-")[0] for p in cache_with_sample.glob("*.onnx")} == {"adain", "blend"}


@pytest.mark.usefixtures("isolated_logging")
@pytest.mark.parametrize("args, text", [
    (["run", "--runtime", "tpu"], "argument --runtime: invalid choice: 'tpu'"),
    (["harmonize", "--composite", "c.png", "--mask", "m.png", "--out", "o.png", "--runtime", "jax"],
     "argument --runtime: invalid choice: 'jax'"),
    (["bench", "--runtimes", "torch,tpu"], "argument --runtimes: 'torch,tpu' is not a comma-separated list"),
])
def test_a_bad_runtime_is_one_sentence_and_exit_2(capsys, args, text):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harmonicam: error: ") and text in err[0], err


@pytest.mark.usefixtures("isolated_logging")
def test_onnx_runtime_without_its_gpu_provider_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr("app.commands.run.resolve_device", lambda name: "cuda")  # as on a machine with a GPU
    assert main(["run", "--source", "sample", "--device", "cuda", "--runtime", "onnxruntime"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--runtime onnxruntime on cuda" in err[0] and "onnxruntime-gpu" in err[0], err


@pytest.mark.usefixtures("isolated_logging")
def test_harmonize_on_onnx_runtime_writes_what_torch_writes(tmp_path, cache):
    _, alpha, background, composite = scene()
    paths = {"--composite": write_image(tmp_path / "c.png", composite),
             "--mask": write_image(tmp_path / "m.png", np.repeat((alpha * 255).astype(np.uint8)[..., None], 3, 2)),
             "--background": write_image(tmp_path / "b.png", background)}
    args = ["harmonize", "--harmonizer", "adain", *(str(v) for kv in paths.items() for v in kv)]
    assert main([*args, "--out", str(tmp_path / "torch.png")]) == 0
    assert main([*args, "--out", str(tmp_path / "ort.png"), "--runtime", "onnxruntime"]) == 0
    want, got = (cv2.imread(str(tmp_path / n)).astype(int) for n in ("torch.png", "ort.png"))
    assert np.abs(want - got).max() <= 1 and np.abs(want - composite[..., ::-1]).max() > 5


@pytest.mark.usefixtures("isolated_logging")
def test_bench_measures_each_runtime_in_its_own_rows(tmp_path, capsys, cache_with_sample):
    path = tmp_path / "bench.json"
    assert main(["bench", "--runtimes", "torch,onnxruntime", "--resolutions", "160x90", "--harmonizers", "hpbnet",
                 "--blends", "learned", "--frames", "3", "--busy-cores", "0", "--json", str(path)]) == 0
    rows = [r for r in json.loads(path.read_text())["results"] if r["blend"] != "plain"]  # after the yardstick
    assert [r["runtime"] for r in rows] == ["torch", "onnxruntime"]
    assert rows[0]["providers"] == {}
    assert rows[1]["providers"] == {"blend-unet": "CPUExecutionProvider", "hpbnet": "CPUExecutionProvider"}
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("cpu ")]
    assert [line[1] for line in table[-2:]] == ["torch", "onnxruntime"]  # the runtime column


@pytest.mark.usefixtures("isolated_logging")
def test_devices_lists_the_runtimes_with_their_providers(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Network runtimes (--runtime):" in out
    assert "  torch: cpu" in out and "  onnxruntime: cpu (CPUExecutionProvider" in out


def _cuda_provider() -> bool:
    try:
        return torch.cuda.is_available() and bool(providers_for("cuda"))
    except RuntimeUnavailable:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_provider(), reason="needs CUDA and onnxruntime-gpu")
@pytest.mark.parametrize("kind, name", LEARNED)
def test_on_a_gpu_the_stand_in_runs_on_a_gpu_provider_and_keeps_tensors_there(kind, name, cache):
    model = make(kind, name, "onnxruntime", device="cuda")
    try:
        for spec in model.onnx_specs():
            net = model.onnx_networks[spec.name]
            assert net.provider in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
            inputs = tuple(x.cuda() for x in _spec_inputs(spec))
            with torch.inference_mode():
                got, want = net(*inputs), spec.module(*inputs)
            assert got.device.type == "cuda"  # bound in device memory: no trip through the host
            record(f"{spec.name} on cuda", float((got - want).abs().max()))
            assert MEASURED[f"{spec.name} on cuda"] <= 1e-3  # TF32 / TensorRT kernels are not bit-exact
    finally:
        model.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_sessions_queue_on_torch_s_stream_with_heuristic_search(tmp_path):
    from models.ops.onnx_runtime import CUDA, TENSORRT, gpu_provider_options

    options = gpu_provider_options(torch.device("cuda"), tmp_path)
    stream = str(torch.cuda.current_stream().cuda_stream)
    assert options[CUDA]["cudnn_conv_algo_search"] == "HEURISTIC" and options[CUDA]["user_compute_stream"] == stream
    assert options[TENSORRT]["trt_fp16_enable"] and options[TENSORRT]["trt_timing_cache_enable"]
